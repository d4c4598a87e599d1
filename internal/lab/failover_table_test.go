package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/cluster"
)

// TestFailoverColumn checks that the terminal table and the HTML report
// show a clustered Redis's failover time (failover_ms) in a column of its
// own: the time when a replica was promoted, "none" when none was, and
// "-" in runs where no Redis master was killed.
func TestFailoverColumn(t *testing.T) {
	ms := int64(2345)
	runs := []*Run{
		fakeRun("cache", "storefail", func(r *RunResult) { r.RedisMode, r.RedisWait, r.FailoverMS = cluster.RedisCluster, 1, &ms }),
		fakeRun("cache", "storefail", func(r *RunResult) { r.RedisMode = cluster.RedisSentinel }),
		fakeRun("cache", "steady", func(r *RunResult) { r.RedisMode = cluster.RedisSingle }),
	}
	cases := []struct {
		r    RunResult
		want string
	}{
		{runs[0].Result, "2345 ms"},
		{runs[1].Result, "none"},
		{runs[2].Result, "-"},
		{fakeRun("cache", "storefail", func(r *RunResult) { r.RedisMode = cluster.RedisSingle }).Result, "-"},
	}
	for _, c := range cases {
		if got := failoverText(c.r); got != c.want {
			t.Errorf("failoverText(%s on %s) = %q, want %q", c.r.Scenario, c.r.RedisMode, got, c.want)
		}
	}

	var buf bytes.Buffer
	if err := WriteTable(&buf, runs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if !strings.Contains(lines[0], "failover") {
		t.Fatalf("table header lacks a failover column:\n%s", buf.String())
	}
	for i, want := range []string{`2345 ms\s*$`, `none\s*$`, `300 ms\s+-\s*$`} {
		if !regexp.MustCompile(want).MatchString(lines[1+i]) {
			t.Errorf("table row %d does not end with %q:\n%s", i+1, want, buf.String())
		}
	}

	path := filepath.Join(t.TempDir(), "report.html")
	if err := WriteReport(path, ReportInfo{Command: "statelab lab", Generated: time.Now(), Machine: ThisMachine()}, runs, EvaluateClaims(runs)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{"<th>store failover</th>", "<td>2345 ms</td>", "<td>none</td>"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
