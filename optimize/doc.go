// Package optimize turns a demand forecast into a per-second plan of replica
// counts for one task group, and owns the small-MIP helper (SolveMIP) other
// packages use to solve their own models on HiGHS.
//
// # Formulation
//
// The seed's MILP, written on the serving count s[t] (replicas covering
// demand in second t) so that a startup delay keeps it a shortest path:
//
//	minimise  sum_t  rc*s[t] + penalty*sla[t] + (startup + d*rc)*up[t]
//	                 + shutdown*down[t] + extra*no_rep[t]
//	s[t] = s[t-1] + up[t] - down[t],  s[-1] = current
//	s[t]*capacity + sla[t] >= demand[t],  sla[t] >= 0
//	down[t] <= s[t-1],  0 <= down[t] <= max_scale_down
//	0 <= up[t] <= max_scale_up, and up[t] = 0 for t < d
//	lo[t] <= s[t] <= hi[t]
//	no_rep[t] in {0,1},  s[t] + no_rep[t] >= 1 where demand[t] > 0
//	s, up, down integer
//
// d is Problem.StartupDelay. A replica requested at t serves from t+d, so an
// increase of s at t is a request at t-d: none can happen before d (nothing
// requested before the plan starts can arrive), and each one also pays the
// d seconds the replica runs before it serves (d*rc). Decreases are
// immediate. With d = 0 this is exactly the seed's formulation on x.
//
// The counts to request are x[t] = s[t] + (increases of s in (t, t+d]),
// clamped to [min_replicas, max_replicas]; they are Plan.Desired, and s is
// Plan.Serving.
//
// no_rep linearisation: s + no_rep >= 1 (only where demand > 0, no_rep is
// fixed to 0 elsewhere). s is a non-negative integer, so s = 0 forces
// no_rep = 1, and s >= 1 leaves it free and its non-negative cost drives it
// to 0: no_rep = [s = 0 and demand > 0] at every optimum.
//
// Bounds: lo[t] = min(min_replicas, current + max_scale_up*max(0, t+1-d)),
// hi[t] = max(max_replicas, current - max_scale_down*(t+1)). Inside
// [min, max] they are just [min, max]; a current count outside the range
// is brought into it as fast as the ramp and the delay allow, so every
// instance is feasible.
//
// Costs must be non-negative: then starting and stopping in the same
// second never pays, and the net-change dynamic program is exact.
//
// # Solvers
//
// DPSolver is a shortest path over (second, serving count) and is exact.
// HiGHSSolver builds the MILP above and solves it with SolveMIP.
// Objective scores any plan, so both are compared on one function; a
// property test checks they agree on random instances. FallbackSolver is
// the production chain: HiGHS; on a time limit its incumbent; otherwise
// the DP; last, InterpolationSolver (the seed's straight line).
//
// # Prediction cache
//
// A Plan holds cache_size desired counts stamped with its start; Plan.Value
// serves Desired[elapsed % cache_size] clamped to [min, max] and asks for a
// refresh after two passes; Serve keeps the old plan when a refresh fails.
// Planner is the one path from history to plan for the API, the reconciler
// and the backtest.
package optimize
