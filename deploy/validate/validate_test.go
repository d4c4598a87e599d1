package validate

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// strategy is one row of statelab's strategy table as the deployment files
// spell it: the app's --store and the balancer's --policy. The table itself
// lives in the main module; deploy/ is data, so the test keeps its own copy
// and fails when the two drift (the files name these values literally).
type strategy struct {
	name   string
	store  string // STATELAB_STORE of every cart replica
	policy string // STATELAB_POLICY of the statelab lb in front of them
	redis  bool   // needs Redis
	pg     bool   // needs PostgreSQL
}

var strategies = []strategy{
	{name: "naive", store: "memory", policy: "round_robin"},
	{name: "sticky", store: "memory", policy: "sticky"},
	{name: "replicated", store: "replicated", policy: "sticky"},
	{name: "cache", store: "redis", policy: "round_robin", redis: true},
	{name: "database", store: "postgres", policy: "round_robin", pg: true},
	{name: "client", store: "cookie", policy: "round_robin"},
}

// repoRoot returns the root of the statelab repository (two levels above
// this module).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// readFile returns the contents of a file below the repository root.
func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
