package lab

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/machine"
	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// e2eConfig is a short failover run: small enough for a test, long enough
// that carts live on the killed replica.
func e2eConfig(t *testing.T, s strategy.Strategy) Config {
	return Config{
		Strategy: s, Scenario: Failover,
		Replicas: 3, Rate: 150, Duration: 3 * time.Second, Think: 60 * time.Millisecond,
		Timeout: 2 * time.Second, Work: 2 * time.Millisecond, MaxInflight: 16, Seed: 7,
		LinBudget: 3 * time.Second,
		Binary:    testenv.StatelabBinary(t), Dir: t.TempDir(), OutDir: t.TempDir(),
	}
}

// TestFailoverEndToEnd runs the failover scenario on real clusters and
// asserts only what is deterministic: memory behind sticky sessions loses
// carts when their replica dies; Redis loses none.
func TestFailoverEndToEnd(t *testing.T) {
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH (the cache run starts its own)")
	var runs []*Run
	for _, s := range []strategy.Strategy{strategy.Sticky, strategy.Cache} {
		t.Run(string(s), func(t *testing.T) {
			// The config first: it builds the statelab binary, which took
			// 30 s of the run's deadline on a loaded machine.
			cfg := e2eConfig(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), machine.Scaled(40*time.Second, 4))
			defer cancel()
			run, err := RunOne(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, run)
			r := run.Result
			t.Logf("%s failover: %d requests, %d errors, carts %d lost %d, items %d lost %d, stale %d, unknown %d, faults %+v, notes %q",
				s, r.Requests, r.Errors, r.Carts, r.CartsLost, r.ItemsAcked, r.ItemsLost, r.StaleReads, run.Unknown, run.Faults, run.Note())
			if run.Skipped != "" {
				t.Fatalf("skipped: %s", run.Skipped)
			}
			if len(run.Crashes) > 0 {
				t.Fatalf("crashes: %v", run.Crashes)
			}
			if len(run.Faults) != 2 || strings.Contains(run.Faults[0].What, "failed") || strings.Contains(run.Faults[1].What, "failed") {
				t.Fatalf("faults %+v, want kill r2 and restart r2, both done", run.Faults)
			}
			if r.Carts == 0 || r.ItemsAcked == 0 || r.Requests == 0 {
				t.Fatalf("no work measured: %+v", r)
			}
			switch s {
			case strategy.Sticky:
				if r.ItemsLost == 0 || r.CartsLost == 0 {
					t.Errorf("sticky failover lost nothing (%d items, %d carts); carts living only on the killed replica must be lost", r.ItemsLost, r.CartsLost)
				}
			case strategy.Cache:
				if r.ItemsLost != 0 || r.CartsLost != 0 {
					t.Errorf("cache failover lost %d items in %d carts; Redis keeps every cart", r.ItemsLost, r.CartsLost)
				}
			}
		})
	}
	if len(runs) != 2 {
		return
	}
	out := t.TempDir()
	files, claims, err := WriteOutputs(out, "", ReportInfo{Command: "test", Generated: time.Now(), Machine: ThisMachine()}, runs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(files.Results)
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || len(res.Runs) != 2 || len(res.Claims) != len(claims) {
		t.Fatalf("results.json: version %d, %d runs, %d claims; want 1, 2, %d", res.Version, len(res.Runs), len(res.Claims), len(claims))
	}
	if claims[2].Verdict != Holds {
		t.Errorf("claim 3 (state on a dead server is lost): %s, want holds: %s", claims[2].Verdict, claims[2].Evidence)
	}
	html, err := os.ReadFile(files.Report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sticky × failover", "cache × failover", "<svg", "kill r2"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(string(html), "http://") || strings.Contains(string(html), "https://") {
		t.Errorf("report.html refers to the network; it must be self-contained")
	}
}
