package validate

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// testSecret stands in for the STATELAB_SECRET a user exports.
const testSecret = "0123456789abcdef0123456789abcdef"

// testAdminToken stands in for the STATELAB_ADMIN_TOKEN a user exports.
const testAdminToken = "fedcba9876543210fedcba9876543210"

// pinnedImage matches an official image named with a full version, e.g.
// redis:8.2.2-alpine (not redis, redis:latest or redis:8).
var pinnedImage = regexp.MustCompile(`^(redis|postgres):\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$`)

// statelessServices are the pricing and catalog replicas every profile runs.
var statelessServices = []string{"pricing-1", "pricing-2", "catalog-1", "catalog-2"}

// loadCompose loads deploy/compose.yaml with the Compose specification's Go
// loader (schema validation, interpolation, merge keys) for the profiles
// given and the environment given.
func loadCompose(t *testing.T, env []string, profiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(repoRoot(t), "deploy", "compose.yaml")},
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
		cli.WithName("statelab"),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// TestComposeProfiles loads compose.yaml once per strategy profile and checks
// that the profile runs exactly the balancer, three replicas and the store
// the strategy needs, wired the way the strategy says.
func TestComposeProfiles(t *testing.T) {
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			p, err := loadCompose(t, []string{"STATELAB_SECRET=" + testSecret, "STATELAB_ADMIN_TOKEN=" + testAdminToken}, st.name)
			if err != nil {
				t.Fatalf("load with profile %s: %v", st.name, err)
			}
			lb := st.name + "-lb"
			carts := []string{st.name + "-cart-1", st.name + "-cart-2", st.name + "-cart-3"}
			want := append(append([]string{lb}, carts...), statelessServices...)
			if st.redis {
				want = append(want, "redis")
			}
			if st.pg {
				want = append(want, "postgres")
			}
			got := p.ServiceNames()
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("profile %s runs %v, want %v", st.name, got, want)
			}
			checkComposeLB(t, p, lb, st, carts)
			checkComposeServices(t, p, lb, carts)
			for _, c := range carts {
				checkComposeCart(t, p, c, st)
			}
			if st.redis || st.pg {
				checkComposeStore(t, p, st)
			}
			if st.store == "replicated" {
				checkComposePeers(t, p, carts)
			}
		})
	}
}

func checkComposeLB(t *testing.T, p *types.Project, name string, st strategy, carts []string) {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatal(err)
	}
	checkStatelabImage(t, s)
	if !slices.Equal(s.Command, types.ShellCommand{"lb"}) {
		t.Errorf("%s: command %q, want [lb]", name, s.Command)
	}
	if got := env(s, "STATELAB_POLICY"); got != st.policy {
		t.Errorf("%s: STATELAB_POLICY=%q, want %q", name, got, st.policy)
	}
	var backends []string
	for _, c := range carts {
		backends = append(backends, fmt.Sprintf("%s=http://%s:8080", c, c))
	}
	if got := env(s, "STATELAB_BACKEND"); got != strings.Join(backends, ",") {
		t.Errorf("%s: STATELAB_BACKEND=%q, want %q", name, got, strings.Join(backends, ","))
	}
	if env(s, "STATELAB_ADMIN_TOKEN") != testAdminToken {
		t.Errorf("%s: the admin API listens off loopback, so it needs STATELAB_ADMIN_TOKEN", name)
	}
	if env(s, "STATELAB_HEALTH_PATH") != "/readyz" {
		t.Errorf("%s: the balancer must health-check /readyz (that is how a draining replica leaves)", name)
	}
	if len(s.Ports) == 0 {
		t.Errorf("%s publishes no port", name)
	}
	for _, port := range s.Ports {
		if port.HostIP != "127.0.0.1" {
			t.Errorf("%s: port %d published on %q, want the host's loopback", name, port.Target, port.HostIP)
		}
	}
	checkHealthcheck(t, s)
}

func checkComposeCart(t *testing.T, p *types.Project, name string, st strategy) {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatal(err)
	}
	checkStatelabImage(t, s)
	if !slices.Equal(s.Command, types.ShellCommand{"app"}) {
		t.Errorf("%s: command %q, want [app] (settings come from the environment)", name, s.Command)
	}
	wantEnv := map[string]string{
		"STATELAB_STORE":  st.store,
		"STATELAB_ID":     name,
		"STATELAB_SECRET": testSecret,
	}
	for k, v := range wantEnv {
		if got := env(s, k); got != v {
			t.Errorf("%s: %s=%q, want %q", name, k, got, v)
		}
	}
	if st.redis && !strings.HasPrefix(env(s, "STATELAB_REDIS"), "redis://redis:6379") {
		t.Errorf("%s: STATELAB_REDIS=%q, want the redis service", name, env(s, "STATELAB_REDIS"))
	}
	if st.pg && !strings.Contains(env(s, "STATELAB_POSTGRES"), "@postgres:5432/") {
		t.Errorf("%s: STATELAB_POSTGRES=%q, want the postgres service", name, env(s, "STATELAB_POSTGRES"))
	}
	if s.StopGracePeriod == nil {
		t.Errorf("%s: no stop_grace_period: the default 10 s cuts the drain short", name)
	}
	checkHealthcheck(t, s)
	if !slices.Contains(s.HealthCheck.Test, "http://127.0.0.1:8080/readyz") {
		t.Errorf("%s: healthcheck %q, want the replica's /readyz", name, s.HealthCheck.Test)
	}
}

func checkComposeStore(t *testing.T, p *types.Project, st strategy) {
	t.Helper()
	name := "redis"
	if st.pg {
		name = "postgres"
	}
	s, err := p.GetService(name)
	if err != nil {
		t.Fatal(err)
	}
	if !pinnedImage.MatchString(s.Image) {
		t.Errorf("%s: image %q is not an official image with a pinned version", name, s.Image)
	}
	if len(s.Ports) != 0 {
		t.Errorf("%s publishes a port on the host; only the project network needs it", name)
	}
	checkHealthcheck(t, s)
	for _, c := range []string{st.name + "-cart-1", st.name + "-cart-2", st.name + "-cart-3"} {
		cs, _ := p.GetService(c)
		if d, ok := cs.DependsOn[name]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s does not wait for %s to be healthy", c, name)
		}
	}
	if st.pg {
		if env(s, "POSTGRES_PASSWORD") == "" {
			t.Error("postgres: no POSTGRES_PASSWORD")
		}
		for _, c := range []string{st.name + "-cart-1"} {
			cs, _ := p.GetService(c)
			if !strings.Contains(env(cs, "STATELAB_POSTGRES"), ":"+env(s, "POSTGRES_PASSWORD")+"@") {
				t.Errorf("%s: STATELAB_POSTGRES does not carry the postgres service's password", c)
			}
		}
	}
}

// checkComposePeers checks that the replicated replicas find each other
// through one DNS name that every one of them answers to.
func checkComposePeers(t *testing.T, p *types.Project, carts []string) {
	t.Helper()
	for _, c := range carts {
		s, _ := p.GetService(c)
		host, _, ok := strings.Cut(env(s, "STATELAB_PEERS"), ":")
		if !ok || host == "" {
			t.Fatalf("%s: STATELAB_PEERS=%q, want HOST:PORT", c, env(s, "STATELAB_PEERS"))
		}
		for _, other := range carts {
			os, _ := p.GetService(other)
			net := os.Networks["default"]
			if net == nil || !slices.Contains(net.Aliases, host) {
				t.Errorf("%s joins through %q, but %s does not answer to that name", c, host, other)
			}
		}
	}
}

func checkStatelabImage(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
		t.Errorf("%s: not built from deploy/Dockerfile", s.Name)
	}
	if !s.ReadOnly {
		t.Errorf("%s: root file system is writable", s.Name)
	}
	for _, arg := range s.Command {
		if strings.Contains(arg, "secret") || strings.Contains(arg, "password") {
			t.Errorf("%s: a secret on the command line (%q): use the environment", s.Name, arg)
		}
	}
}

func checkHealthcheck(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Disable {
		t.Errorf("%s: no healthcheck", s.Name)
	}
}

func env(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}

// TestComposeNeedsSecret checks that compose.yaml refuses to start without
// STATELAB_SECRET instead of running replicas that cannot agree on one.
func TestComposeNeedsSecret(t *testing.T) {
	_, err := loadCompose(t, []string{"STATELAB_ADMIN_TOKEN=" + testAdminToken}, "client")
	if err == nil || !strings.Contains(err.Error(), "STATELAB_SECRET") {
		t.Fatalf("load without STATELAB_SECRET: err = %v, want one naming STATELAB_SECRET", err)
	}
}

// TestComposeEveryServiceInAProfile checks that a bare `docker compose up`
// starts nothing: every service belongs to a strategy profile.
func TestComposeEveryServiceInAProfile(t *testing.T) {
	p, err := loadCompose(t, []string{"STATELAB_SECRET=" + testSecret, "STATELAB_ADMIN_TOKEN=" + testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	if names := p.ServiceNames(); len(names) != 0 {
		t.Fatalf("services outside every profile: %v", names)
	}
	all, err := loadCompose(t, []string{"STATELAB_SECRET=" + testSecret, "STATELAB_ADMIN_TOKEN=" + testAdminToken}, "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all.Services {
		ok := false
		for _, st := range strategies {
			ok = ok || slices.Contains(s.Profiles, st.name)
		}
		if !ok {
			t.Errorf("%s is in profiles %v, none of them a strategy", s.Name, s.Profiles)
		}
	}
	if want := 6*4 + 2 + len(statelessServices); len(all.Services) != want {
		t.Errorf("%d services with every profile, want %d (6 strategies x (lb + 3 replicas) + redis + postgres + the stateless services)", len(all.Services), want)
	}
}

// checkComposeServices checks the stateless services of a profile: each
// runs its subcommand under its own name with a health check on /readyz; the
// carts call every replica of both, and the balancer routes /api/quote and
// /api/catalog to pools of exactly those replicas.
func checkComposeServices(t *testing.T, p *types.Project, lb string, carts []string) {
	t.Helper()
	urls := map[string][]string{}
	var poolBackends []string
	for _, name := range statelessServices {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		kind, _, _ := strings.Cut(name, "-")
		checkStatelabImage(t, s)
		if !slices.Equal(s.Command, types.ShellCommand{kind}) || env(s, "STATELAB_ID") != name {
			t.Errorf("%s: runs %q as %q, want [%s] as %s", name, s.Command, env(s, "STATELAB_ID"), kind, name)
		}
		checkHealthcheck(t, s)
		if !slices.Contains(s.HealthCheck.Test, "http://127.0.0.1:8080/readyz") {
			t.Errorf("%s: healthcheck %q, want its /readyz", name, s.HealthCheck.Test)
		}
		u := "http://" + name + ":8080"
		urls[kind] = append(urls[kind], u)
		poolBackends = append(poolBackends, kind+"="+name+"="+u)
	}
	for _, c := range carts {
		s, _ := p.GetService(c)
		for _, name := range statelessServices {
			if d, ok := s.DependsOn[name]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s does not wait for %s to be healthy", c, name)
			}
		}
		for kind, want := range urls {
			key := "STATELAB_" + strings.ToUpper(kind)
			if got := env(s, key); got != strings.Join(want, ",") {
				t.Errorf("%s: %s=%q, want %q", c, key, got, strings.Join(want, ","))
			}
		}
	}
	s, _ := p.GetService(lb)
	got := strings.Split(env(s, "STATELAB_POOL_BACKEND"), ",")
	slices.Sort(got)
	slices.Sort(poolBackends)
	if !slices.Equal(got, poolBackends) {
		t.Errorf("%s: STATELAB_POOL_BACKEND=%q, want the stateless replicas %q", lb, got, poolBackends)
	}
	if env(s, "STATELAB_ROUTE") != "/api/quote=pricing,/api/catalog=catalog" {
		t.Errorf("%s: STATELAB_ROUTE=%q, want /api/quote and /api/catalog routed to their pools", lb, env(s, "STATELAB_ROUTE"))
	}
}
