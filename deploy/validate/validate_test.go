package validate

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/statelab/statelab/internal/stores"
	statelabstrategy "github.com/statelab/statelab/internal/strategy"
)

// strategy is one row of statelab's strategy table (internal/strategy) as
// the deployment files spell it: the app's --store and the balancer's
// --policy.
type strategy struct {
	name   string
	store  string // STATELAB_STORE of every cart replica
	policy string // STATELAB_POLICY of the statelab lb in front of them
	redis  bool   // needs Redis
	pg     bool   // needs PostgreSQL
}

// strategies is the strategy table, read from the one place statelab keeps
// it, so a strategy added there without a Compose profile and a kustomize
// overlay fails these tests. One difference: the table's database strategy
// runs SQLite, which replicas on several hosts cannot share, so the
// deployments give it PostgreSQL (as a cluster given a PostgreSQL URL does).
var strategies = func() []strategy {
	var out []strategy
	for _, spec := range statelabstrategy.Specs() {
		st := strategy{name: string(spec.Strategy), store: string(spec.Store), policy: spec.Policy}
		if spec.Store == stores.SQLite {
			st.store = string(stores.Postgres)
		}
		st.redis = st.store == string(stores.Redis)
		st.pg = st.store == string(stores.Postgres)
		out = append(out, st)
	}
	return out
}()

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
