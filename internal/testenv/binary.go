package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// statelabBuild is the statelab binary built for this test process.
var statelabBuild struct {
	once sync.Once
	dir  string
	path string
	out  []byte
	err  error
}

// StatelabBinary builds ./cmd/statelab from this tree (without -race: the
// processes under test are the product, not the test) once per test process
// and returns its path. Packages that use it call Main from their TestMain so
// the binary is removed when the tests end.
func StatelabBinary(tb testing.TB) string {
	tb.Helper()
	b := &statelabBuild
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "statelab-test-bin-*")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "statelab")
		cmd := exec.Command(goTool(), "build", "-o", b.path, "github.com/statelab/statelab/cmd/statelab")
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		tb.Fatalf("go build statelab: %v\n%s", b.err, b.out)
	}
	return b.path
}

// Main runs the tests of m and removes what StatelabBinary built; call it as
// the whole body of a package's TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if statelabBuild.dir != "" {
		os.RemoveAll(statelabBuild.dir)
	}
	os.Exit(code)
}

// goTool is the go command: the one on PATH (go test puts its own first), or
// the one of the toolchain that built the test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
