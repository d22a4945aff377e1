package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// A fake daemon (httptest) answers /v1/status: the CLI's rendering and its
// token handling are what is under test here.
func TestStatusPrintsPoliciesWithTheirPlanAndLastDecision(t *testing.T) {
	now := 3
	st := reconciler.Status{Leader: true, Policies: []reconciler.PolicyStatus{{
		Policy:       reconciler.Policy{Key: "default/shop/web", Min: 1, Max: 8},
		Plan:         &optimize.Plan{ID: "plan-1", Desired: []int{3, 3, 4}},
		PlanValueNow: &now,
		LastDecision: &reconciler.Decision{Desired: 2, Action: "scale", Reason: "plan plan-1 wants 3"},
		Warnings:     []string{"seasonality 24h0m0s is never fitted"},
	}}, Invalid: map[string]string{"default/shop/bad": "check \"x\": unknown source", "default/shop/awful": "no check"}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":"missing or wrong bearer token"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer ts.Close()
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"nomadscalerd", "status", "--addr", ts.URL, "--token", "tok"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"role: leader", "default/shop/web", "plan-1 [3 3 4]", "scale: plan plan-1 wants 3", "INVALID default/shop/bad",
		"WARNING default/shop/web: seasonality 24h0m0s is never fitted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Skipped policies in the order of their keys, every time.
	if a, b := strings.Index(out.String(), "INVALID default/shop/awful"), strings.Index(out.String(), "INVALID default/shop/bad"); a < 0 || b < a {
		t.Errorf("skipped policies out of key order:\n%s", out.String())
	}
	err := newApp().Run([]string{"nomadscalerd", "status", "--addr", ts.URL, "--token", "bad"})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: err = %v", err)
	}
}
