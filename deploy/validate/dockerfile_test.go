package validate

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one FROM ... and the instructions after it.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile splits a Dockerfile into global ARGs and stages. It knows
// just enough syntax for deploy/Dockerfile: comments, line continuations and
// the FROM ... AS name form.
func parseDockerfile(t *testing.T, text string) (args map[string]string, stages []stage) {
	t.Helper()
	args = map[string]string{}
	var logical []string
	cur := ""
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		logical = append(logical, strings.TrimSpace(cur+trimmed))
		cur = ""
	}
	for _, l := range logical {
		if l == "" {
			continue
		}
		cmd, rest, _ := strings.Cut(l, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest)}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) == 0:
			t.Fatalf("instruction %s before the first FROM", in.cmd)
		default:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return args, stages
}

// makeRecipe returns the commands of a Makefile target.
func makeRecipe(t *testing.T, makefile, target string) []string {
	t.Helper()
	var recipe []string
	in := false
	for _, line := range strings.Split(makefile, "\n") {
		switch {
		case strings.HasPrefix(line, target+":"):
			in = true
		case in && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSpace(line))
		case in:
			return recipe
		}
	}
	if !in {
		t.Fatalf("Makefile has no %q target", target)
	}
	return recipe
}

// TestDockerfileBuildsLikeTheProject checks that the image's build stage is
// the project's normal build, static, and that the final stage runs that
// binary as a non-root user with a health check.
func TestDockerfileBuildsLikeTheProject(t *testing.T) {
	args, stages := parseDockerfile(t, readFile(t, "deploy/Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("want 2 stages (build, final), got %d", len(stages))
	}
	build, final := stages[0], stages[1]

	// The Go toolchain of the image is the one go.mod asks for.
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, "go.mod"))
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if args["GO_VERSION"] != goVersion[1] {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", args["GO_VERSION"], goVersion[1])
	}
	if !strings.HasPrefix(build.image, "golang:${GO_VERSION}") || build.name == "" {
		t.Errorf("build stage is FROM %s AS %q, want golang:${GO_VERSION}... AS <name>", build.image, build.name)
	}

	// The build stage runs `make build`, whose recipe is the project's build
	// of ./cmd/statelab into bin/statelab, with cgo off.
	recipe := makeRecipe(t, readFile(t, "Makefile"), "build")
	wantRecipe := "$(GO) build -o bin/statelab ./cmd/statelab"
	if len(recipe) != 1 || recipe[0] != wantRecipe {
		t.Errorf("Makefile build recipe is %q, want [%q] (the Dockerfile runs it and copies bin/statelab)", recipe, wantRecipe)
	}
	var env, runs []string
	for _, in := range build.body {
		switch in.cmd {
		case "ENV":
			env = append(env, in.args)
		case "RUN":
			runs = append(runs, in.args)
		}
	}
	if !slicesContainSubstring(env, "CGO_ENABLED=0") {
		t.Errorf("build stage ENV %q does not set CGO_ENABLED=0", env)
	}
	if len(runs) == 0 || !strings.HasSuffix(runs[len(runs)-1], "make build") {
		t.Errorf("the build stage's last RUN is not `make build`: %q", runs)
	}

	// The final stage: small base, the binary from the build stage, non-root,
	// a health check in exec form, the binary as entry point.
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") && final.image != "scratch" {
		t.Errorf("final stage FROM %s, want distroless/static or scratch", final.image)
	}
	found := map[string]string{}
	for _, in := range final.body {
		found[in.cmd] = in.args
	}
	copyArgs := strings.Fields(found["COPY"])
	if len(copyArgs) != 3 || copyArgs[0] != "--from="+build.name || copyArgs[1] != "/src/bin/statelab" {
		t.Errorf("final stage COPY %q, want --from=%s /src/bin/statelab <dest>", found["COPY"], build.name)
	}
	if u := found["USER"]; u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		t.Errorf("final stage USER %q, want a non-root numeric user", u)
	}
	var entry []string
	if err := json.Unmarshal([]byte(found["ENTRYPOINT"]), &entry); err != nil || len(entry) != 1 || len(copyArgs) != 3 || entry[0] != copyArgs[2] {
		t.Errorf("ENTRYPOINT %s, want the exec form naming the copied binary", found["ENTRYPOINT"])
	}
	hc := found["HEALTHCHECK"]
	_, exec, ok := strings.Cut(hc, "CMD ")
	var probe []string
	if !ok || json.Unmarshal([]byte(exec), &probe) != nil || len(probe) < 2 || probe[0] != entry[0] || probe[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK %q, want CMD [\"<binary>\", \"healthcheck\", ...] (the image has no shell)", hc)
	}
}

// TestBuildNeedsNoCgo checks that every package of the binary builds with
// cgo off (as the image's build does), by listing them the way go build
// would, without compiling.
func TestBuildNeedsNoCgo(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go not on PATH: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-e", "-f", "{{if .Error}}{{.ImportPath}}: {{.Error}}{{end}}{{if .CgoFiles}}{{.ImportPath}} uses cgo{{end}}", "./cmd/statelab")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("CGO_ENABLED=0 go list -deps ./cmd/statelab: %v\n%s", err, out)
	}
}

// TestDockerignoreKeepsTheSources checks that .dockerignore does not drop
// anything `make build` reads.
func TestDockerignoreKeepsTheSources(t *testing.T) {
	need := []string{"go.mod", "go.sum", "Makefile", "cmd", "internal", "session", "balancer"}
	for _, line := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		p := strings.TrimSuffix(strings.TrimSpace(line), "/")
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		for _, n := range need {
			if p == n || p == "*" || p == "**" {
				t.Errorf(".dockerignore drops %s, which make build needs", n)
			}
		}
	}
}

func slicesContainSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
