// Package optimize turns a demand forecast into a per-second plan of replica
// counts, and owns the small-MIP helper (SolveMIP) other packages use.
package optimize
