package reconciler

import (
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nomadscalerd/nomadscalerd/forecast"
	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestSeedDemandUsesTheExogenousChecksWhenThePolicyRecordsThem(t *testing.T) {
	p := Policy{Target: Target{DemandResponseTime: 0.05, DemandQueue: 0.1, DemandAuthWaiting: 0.2}}
	got := SeedDemand(p, []float64{100, 200}, map[string]float64{"avg_response_time": 2, "queue_waiting": 10, "authentication_awaiting_users": 5})
	// 100*2*0.05 + 10*0.1 + 5*0.2 = 12; 200*2*0.05 + 2 = 22
	if len(got) != 2 || math.Abs(got[0]-12) > 1e-12 || math.Abs(got[1]-22) > 1e-12 {
		t.Fatalf("demand = %v, want [12 22]", got)
	}
	plain := SeedDemand(p, []float64{100, 200}, map[string]float64{"requests": 1})
	if plain[0] != 100 || plain[1] != 200 {
		t.Fatalf("without exogenous checks demand = %v, want the forecast itself", plain)
	}
}

func TestATargetValueCheckIsRecordedAsItsGroupTotalAndOthersAsTheyAre(t *testing.T) {
	p := Policy{Key: "default/web/api", Namespace: "default", Job: "web", Group: "api", Checks: []Check{
		{Name: "cpu", Source: "nomad-apm", Query: "avg_cpu_percent", TargetValue: 75},
		{Name: "mem", Source: "nomad-apm", Query: "avg_memory_percent"},
	}}
	got := RecordTargets([]Policy{p})
	if len(got) != 2 {
		t.Fatalf("targets = %+v, want one per check", got)
	}
	if !got[0].Query.TimesCount || got[1].Query.TimesCount {
		t.Errorf("TimesCount = %v, %v; want only the target-value check's set", got[0].Query.TimesCount, got[1].Query.TimesCount)
	}
}

func TestEveryModelFitIsCountedWithItsTimeAndStoredForTheNextStart(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "f.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy(1, 10)
	p.Key = "default/web/api"
	f := NewStoredForecaster(p, db, m, slog.New(slog.DiscardHandler))
	// An hour of a noisy daily-ish level: a model has something to fit.
	h := forecast.History{Requests: make([]float64, 3600)}
	for i := range h.Requests {
		h.Requests[i] = 100 + 20*math.Sin(float64(i)/300) + float64((i*7919)%13)
	}
	if _, err := f.Forecast(context.Background(), h, 60); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.fits); got != 1 {
		t.Errorf("nomadscaler_model_fits_total = %v after one fit, want 1", got)
	}
	if got := testutil.ToFloat64(m.fitSeconds); !(got > 0) {
		t.Errorf("nomadscaler_model_fit_seconds_total = %v, want the fit's time", got)
	}
	var rec model.Record
	if err := db.GetJSON(migrations.BucketFits, p.Key, &rec); err != nil || len(rec.Params) == 0 || rec.SelectDuration < rec.FitDuration {
		t.Errorf("stored fit %+v, %v; want its parameters and every candidate's time", rec, err)
	}
}

func TestARestartedDaemonForecastsFromItsStoredFitInsteadOfFittingAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	db, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy(1, 10)
	p.Key = "default/web/api"
	h := forecast.History{Requests: make([]float64, 3600)}
	for i := range h.Requests {
		h.Requests[i] = 100 + 20*math.Sin(float64(i)/300) + float64((i*7919)%13)
	}
	log := slog.New(slog.DiscardHandler)
	if _, err := NewStoredForecaster(p, db, m, log).Forecast(context.Background(), h, 60); err != nil {
		t.Fatal(err)
	}
	// The restart: the same file opened again, new metrics, new forecasters.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err = NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewStoredForecaster(p, db, m, log).Forecast(context.Background(), h, 60); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.fits); got != 0 {
		t.Fatalf("%v model fits after the restart, want none: the stored fit is fresh", got)
	}
	// Another model_step is another model: its stored fit is not resumed.
	q := p
	q.Target.ModelStep = 30 * time.Second
	if _, err := NewStoredForecaster(q, db, m, log).Forecast(context.Background(), h, 60); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.fits); got != 1 {
		t.Fatalf("%v model fits for a policy whose model_step changed, want 1", got)
	}
}
