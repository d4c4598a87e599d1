package validate

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// statelabBuild is the statelab binary built once for this test process.
var statelabBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// TestMain removes the binary statelabBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if statelabBuild.path != "" {
		os.RemoveAll(filepath.Dir(statelabBuild.path))
	}
	os.Exit(code)
}

// statelabBinary builds ./cmd/statelab the way internal/testenv does (so
// the build cache of the main suite serves it) and returns its path.
func statelabBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go not on PATH (%v): cannot build statelab to read its flags", err)
	}
	b := &statelabBuild
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "statelab-validate-*")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "statelab")
		cmd := exec.Command(goTool, "build", "-o", b.path, "github.com/statelab/statelab/cmd/statelab")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build statelab: %v\n%s", b.err, b.out)
	}
	return b.path
}

var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// commandEnv returns the STATELAB_ variables a statelab subcommand reads:
// one per flag its -h lists.
func commandEnv(t *testing.T, bin, command string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, command, "-h").CombinedOutput()
	env := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		env["STATELAB_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
	}
	if len(env) == 0 {
		t.Fatalf("statelab %s -h lists no flags:\n%s", command, out)
	}
	return env
}

// TestEnvironmentNamesFlags checks that every STATELAB_ variable the
// deployment files set is a flag of the subcommand it is given to. statelab
// ignores variables that name no flag, so a misspelt one would silently
// leave a default in place (a memory store instead of Redis, no drain).
func TestEnvironmentNamesFlags(t *testing.T) {
	bin := statelabBinary(t)
	known := map[string]map[string]bool{}
	check := func(where, command string, names []string) {
		t.Helper()
		if known[command] == nil {
			known[command] = commandEnv(t, bin, command)
		}
		for _, n := range names {
			if strings.HasPrefix(n, "STATELAB_") && !known[command][n] {
				t.Errorf("%s: %s is not a flag of statelab %s", where, n, command)
			}
		}
	}

	// Compose: every service that runs the statelab image.
	p, err := loadCompose(t, []string{"STATELAB_SECRET=" + testSecret, "STATELAB_ADMIN_TOKEN=" + testAdminToken}, "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Services {
		if s.Build == nil {
			continue
		}
		if len(s.Command) == 0 {
			t.Errorf("compose %s: no subcommand", s.Name)
			continue
		}
		var names []string
		for k := range s.Environment {
			names = append(names, k)
		}
		sort.Strings(names)
		check("compose "+s.Name, s.Command[0], names)
	}

	// The image's own ENV applies to every subcommand that has the flag;
	// each must be a flag of app at least (the default command).
	for _, line := range strings.Split(readFile(t, "deploy/Dockerfile"), "\n") {
		for _, f := range strings.Fields(line) {
			if name, _, ok := strings.Cut(f, "="); ok && strings.HasPrefix(name, "STATELAB_") {
				check("Dockerfile ENV", "app", []string{name})
			}
		}
	}

	// Kubernetes: every container that runs the project's image.
	k, whyNot := findKubectl()
	if k == "" {
		t.Log(whyNot + "; their variables are not checked")
		return
	}
	for _, dir := range append([]string{"base"}, overlayDirs(t)...) {
		r := render(t, k, dir)
		var pods []corev1.PodSpec
		for _, d := range r.deployments {
			pods = append(pods, d.Spec.Template.Spec)
		}
		for _, s := range r.statefulSets {
			pods = append(pods, s.Spec.Template.Spec)
		}
		for _, pod := range pods {
			for _, c := range pod.Containers {
				if c.Image != statelabImage {
					continue
				}
				if len(c.Args) == 0 {
					t.Errorf("%s container %s: no subcommand", dir, c.Name)
					continue
				}
				var names []string
				for _, e := range c.Env {
					names = append(names, e.Name)
				}
				check(dir+" container "+c.Name, c.Args[0], names)
			}
		}
	}
}
