// Package deploy holds what an operator needs to run nomadscalerd: Nomad
// job files and an example config under nomad/, a Grafana dashboard under
// grafana/. It has no Go code of its own; its tests check the artefacts
// against the real thing: every job file validates with the Nomad binary,
// every example policy parses with the daemon's policy parser, the example
// config starts the daemon, the service job runs on a Nomad dev agent and
// passes its health check, the dashboard queries only metrics the daemon
// exports, and the README documents every flag and policy key.
package deploy
