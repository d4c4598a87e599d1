package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/lab"
	"github.com/statelab/statelab/internal/testenv"
)

// This file runs `statelab lab --target` against clusters the lab did not
// start: deploy/local/cluster.sh starts `statelab lb` and three `statelab
// app` processes, and the lab kills a replica only through --kill-cmd
// (kill -9 of the pid the script wrote). Its verdicts must be the ones the
// lab gives on the cluster it starts itself for the same strategy and
// scenario: under sticky sessions a killed replica takes carts with it,
// with carts in Redis it takes none.

func TestLabTargetMatchesBuiltIn(t *testing.T) {
	bin := testenv.StatelabBinary(t)
	redis := testenv.RedisURL(t)
	for _, tt := range []struct {
		strategy string
		loses    bool
		token    string // the balancer's admin token, as Compose sets it
	}{
		{"sticky", true, ""},
		{"cache", false, "target-test-admin-token"},
	} {
		t.Run(tt.strategy, func(t *testing.T) {
			common := []string{"lab", "--strategy", tt.strategy, "--scenario", "failover", "--quick", "--duration", "4s"}
			var env []string
			if tt.token != "" {
				env = []string{"STATELAB_ADMIN_TOKEN=" + tt.token}
			}
			dir := startLocalCluster(t, bin, tt.strategy, redis, env)
			kill := "kill -9 $(cat " + dir.path + "/{id}.pid)"
			target := runLabJSON(t, bin, append(common, "--target", dir.lb, "--target-admin", dir.admin, "--kill-cmd", kill), env)
			builtIn := runLabJSON(t, bin, append(common, "--redis", redis), nil)

			tr, br := target.Runs[0], builtIn.Runs[0]
			if tr.Target != dir.lb || br.Target != "" {
				t.Errorf("target fields: %q and %q, want %q and none", tr.Target, br.Target, dir.lb)
			}
			if (tr.ItemsLost > 0) != tt.loses || (br.ItemsLost > 0) != tt.loses {
				t.Errorf("%s: items lost against the target %d, built in %d; want losses: %v", tt.strategy, tr.ItemsLost, br.ItemsLost, tt.loses)
			}
			if tr.ItemsAcked == 0 || tr.Carts == 0 {
				t.Errorf("the target run checked nothing: %+v", tr)
			}
			judged := 0
			for i, c := range target.Claims {
				b := builtIn.Claims[i]
				if (c.Holds == nil) != (b.Holds == nil) || (c.Holds != nil && *c.Holds != *b.Holds) {
					t.Errorf("claim %q: against the target %q, built in %q", c.Claim, c.Evidence, b.Evidence)
				}
				if c.Holds != nil {
					judged++
				}
			}
			if judged == 0 {
				t.Errorf("no claim was judged against the target")
			}
		})
	}
}

// localCluster is a cluster deploy/local/cluster.sh started.
type localCluster struct {
	path, lb, admin string
}

// startLocalCluster starts the script's cluster of strategy on free ports,
// with env added to the script's environment, and stops it when the test
// ends.
func startLocalCluster(t *testing.T, bin, strategy, redis string, env []string) localCluster {
	t.Helper()
	script, err := filepath.Abs("../../deploy/local/cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	c := localCluster{path: filepath.Join(t.TempDir(), "cluster")}
	lbPort, adminPort := testenv.FreePort(t), testenv.FreePort(t)
	c.lb, c.admin = fmt.Sprintf("http://127.0.0.1:%d", lbPort), fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	env = append(append(envWithoutStatelab(), env...), "STATELAB="+bin, "REDIS_URL="+redis,
		fmt.Sprintf("LB_PORT=%d", lbPort), fmt.Sprintf("ADMIN_PORT=%d", adminPort),
		fmt.Sprintf("APP_PORTS=%d %d %d", testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)))
	script_ := func(args ...string) ([]byte, error) {
		cmd := exec.Command("sh", append([]string{script}, args...)...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	t.Cleanup(func() {
		if out, err := script_("stop", c.path); err != nil {
			t.Errorf("stop: %v: %s", err, out)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(c.path, "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), b)
			}
		}
	})
	if out, err := script_("start", c.path, strategy); err != nil {
		t.Fatalf("cluster.sh start: %v: %s", err, out)
	}
	return c
}

// runLabJSON runs statelab with args (and its output in a fresh
// directory), env added to its environment, and returns its results.json.
func runLabJSON(t *testing.T, bin string, args, env []string) lab.Results {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command(bin, append(args, "--out", out)...)
	cmd.Env = append(envWithoutStatelab(), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("statelab %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	var res lab.Results
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err == nil {
		err = json.Unmarshal(data, &res)
	}
	if err != nil || len(res.Runs) != 1 || len(res.Claims) == 0 {
		t.Fatalf("statelab %s: results %v %+v\n%s", strings.Join(args, " "), err, res, b)
	}
	return res
}
