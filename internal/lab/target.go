package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/cart"
	"github.com/statelab/statelab/internal/stores"
)

// Target is a deployment the lab did not start (`statelab lab --target`):
// the lab shops through its balancer, learns its replicas from their
// responses (or from the balancer's admin API) and injects faults only by
// running the commands the user gave.
type Target struct {
	// URL is the balancer's base URL, as shoppers reach it.
	URL string
	// AdminURL, when set, is the balancer's admin API (statelab lb
	// --admin): the lab lists its backends there. AdminToken is the bearer
	// token it requires, if any.
	AdminURL, AdminToken string
	// Commands are the shell commands (run with sh -c) that perform each
	// action, "{id}" replaced by the replica's id. An action without a
	// command is not done, and a scenario that needs it is not run.
	Commands map[Action]string
}

// The caps of a run against a target: someone else's deployment must not
// be flooded by accident (docs/deploy.md).
const (
	// TargetMaxRate is the highest offered load against a target, in
	// requests per second.
	TargetMaxRate = 500
	// TargetMaxDuration is the longest a run against a target shops.
	TargetMaxDuration = 10 * time.Minute
)

// TargetActions are the actions a target can be given a command for, in
// the order of the flags of docs/deploy.md.
func TargetActions() []Action {
	return []Action{ActKill, ActPause, ActResume, ActAdd, ActStoreStop, ActStoreStart}
}

// Flag is the command-line flag that gives the action's command.
func (a Action) Flag() string { return "--" + string(a) + "-cmd" }

// validate checks a run of c against the target, when there is one.
func (t Target) validate(c Config) error {
	if t.URL == "" {
		if t.AdminURL != "" || len(t.Commands) > 0 {
			return fmt.Errorf("%w: the target's admin API and commands need the target's URL", ErrBadConfig)
		}
		return nil
	}
	for _, u := range []string{t.URL, t.AdminURL} {
		if err := checkTargetURL(u); u != "" && err != nil {
			return err
		}
	}
	for a := range t.Commands {
		if !slices.Contains(TargetActions(), a) {
			return fmt.Errorf("%w: a target cannot be given a command for %q", ErrBadConfig, a)
		}
	}
	switch {
	case c.Rate > TargetMaxRate:
		return fmt.Errorf("%w: against a target the rate is at most %d requests/s, not %v", ErrBadConfig, TargetMaxRate, c.Rate)
	case c.Duration > TargetMaxDuration:
		return fmt.Errorf("%w: against a target a run lasts at most %v, not %v", ErrBadConfig, TargetMaxDuration, c.Duration)
	}
	return nil
}

// checkTargetURL accepts an absolute http or https URL with a host and no
// query.
func checkTargetURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: %q is not an http:// or https:// URL of a host", ErrBadConfig, s)
	}
	return nil
}

// what names the deployment in progress lines.
func (t Target) what() string {
	if t.URL == "" {
		return "cluster"
	}
	return "target " + t.URL + " (not started by the lab)"
}

// target is a running Target.
type target struct {
	t        Target
	client   *http.Client
	store    string
	names    []string // the replicas found at the start, in order
	progress func(string)

	mu        sync.Mutex
	storeDown bool
	paused    map[string]bool
}

// startTarget reaches the target of cfg: it checks that the balancer
// answers, learns the replicas and the store, and returns the run's
// configuration (its replicas are the target's; a scale-out adds as many
// again). It returns a reason instead when the target cannot run the
// scenario.
func startTarget(ctx context.Context, cfg Config) (Deployment, Config, string, error) {
	t := &target{t: cfg.Target, client: &http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirect},
		progress: cfg.Progress, paused: map[string]bool{}}
	store, err := t.storeKind(ctx, cfg)
	if err != nil {
		return nil, cfg, "", err
	}
	t.store = store
	if t.names, err = t.probe(ctx); err != nil {
		return nil, cfg, "", err
	}
	cfg.Replicas = len(t.names)
	if cfg.Scenario == Scaleout {
		cfg.Replicas *= 2
	}
	if cfg.Scenario == Failover && len(t.names) < 2 {
		return nil, cfg, fmt.Sprintf("failover needs at least 2 replicas; the target showed %d", len(t.names)), nil
	}
	if why := unsupported(t, cfg.faultPlan()); why != "" {
		return nil, cfg, why, nil
	}
	return t, cfg, "", nil
}

// storeKind asks a replica (GET /api/replica through the balancer) where
// it keeps carts, and checks that it is where cfg's strategy keeps them.
// A balancer that does not forward /api/replica leaves the strategy's
// store.
func (t *target) storeKind(ctx context.Context, cfg Config) (string, error) {
	want := cfg.Strategy.Spec().Store
	var st cart.ReplicaStatus
	code, err := t.getJSON(ctx, t.t.URL+"/api/replica", &st)
	if err != nil {
		return "", fmt.Errorf("lab: target %s: %w", t.t.URL, err)
	}
	if code != http.StatusOK || st.Store == "" {
		return string(want), nil
	}
	got := stores.Kind(st.Store)
	sameDB := want == stores.SQLite && got == stores.Postgres
	if got != want && !sameDB {
		return "", fmt.Errorf("lab: the target's replicas keep carts in %s, not in %s as --strategy %s does: name the strategy the target runs", got, want, cfg.Strategy)
	}
	return st.Store, nil
}

// getJSON GETs u (with the admin token when u is on the admin API) and
// decodes a 200 answer into v; it returns the status.
func (t *target) getJSON(ctx context.Context, u string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if t.t.AdminURL != "" && strings.HasPrefix(u, t.t.AdminURL) && t.t.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+t.t.AdminToken)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// probe learns the cart replicas serving now from the X-Served-By of GET
// /api/cart sent without a cookie (the balancer spreads new clients). With
// the admin API it stops once it has seen as many replicas as the default
// pool has healthy backends; without, after eight answers in a row that
// showed no new replica. At most 64 requests.
func (t *target) probe(ctx context.Context) ([]string, error) {
	want := 0
	if t.t.AdminURL != "" {
		bs, err := t.Backends(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if b.Healthy && (b.Pool == "" || b.Pool == balancer.DefaultPool) {
				want++
			}
		}
	}
	seen := map[string]bool{}
	var lastErr error
	for i, quiet := 0, 0; i < 64 && quiet < 8 && (want == 0 || len(seen) < want) && ctx.Err() == nil; i++ {
		id, err := t.servedBy(ctx)
		quiet++
		switch {
		case err != nil:
			lastErr = err
		case !seen[id]:
			seen[id], quiet = true, 0
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("lab: target %s: no replica answered GET /api/cart with X-Served-By: %v", t.t.URL, lastErr)
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids, nil
}

// safeID is what a replica id may look like before the lab puts it in a
// shell command: it comes from a response header.
var safeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$`)

// servedBy sends one GET /api/cart without a cookie and returns the
// replica that answered.
func (t *target) servedBy(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.t.URL+"/api/cart", nil)
	if err != nil {
		return "", err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	id := resp.Header.Get("X-Served-By")
	switch {
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("GET /api/cart: %s", resp.Status)
	case !safeID.MatchString(id):
		return "", fmt.Errorf("GET /api/cart: X-Served-By %q is not a replica id the lab can put in a command", id)
	}
	return id, nil
}

// compareIDs orders replica ids naturally: r2 before r10.
func compareIDs(a, b string) int {
	ta, tb := strings.TrimRight(a, "0123456789"), strings.TrimRight(b, "0123456789")
	if ta == tb {
		na, _ := strconv.Atoi(a[len(ta):])
		nb, _ := strconv.Atoi(b[len(tb):])
		if na != nb {
			return na - nb
		}
	}
	return strings.Compare(a, b)
}

// URL implements Deployment.
func (t *target) URL() string { return t.t.URL }

// Store implements Deployment.
func (t *target) Store() string { return t.store }

// ReplicaIDs implements Deployment: it probes the target again.
func (t *target) ReplicaIDs(ctx context.Context) []string {
	ids, err := t.probe(ctx)
	if err != nil {
		return nil
	}
	return ids
}

// Backends implements Deployment through the admin API.
func (t *target) Backends(ctx context.Context) ([]balancer.BackendStatus, error) {
	if t.t.AdminURL == "" {
		return nil, errors.New("lab: no --target-admin given")
	}
	var bs []balancer.BackendStatus
	code, err := t.getJSON(ctx, strings.TrimSuffix(t.t.AdminURL, "/")+"/admin/backends", &bs)
	switch {
	case err != nil:
		return nil, fmt.Errorf("lab: target admin API: %w", err)
	case code != http.StatusOK:
		return nil, fmt.Errorf("lab: target admin API: GET /admin/backends: %d %s (is STATELAB_ADMIN_TOKEN set?)", code, http.StatusText(code))
	}
	return bs, nil
}

// Can implements Deployment: an action is possible when its command was
// given; a replica of a target is never restarted by the lab.
func (t *target) Can(a Action) (bool, string) {
	if a == ActRestart {
		return false, "the lab does not restart a target's replicas (the platform does, or not)"
	}
	if t.t.Commands[a] == "" {
		return false, "no " + a.Flag() + " was given"
	}
	return true, ""
}

// Do implements Deployment: it runs the action's command with {id}
// replaced by the target's replica id (the plan's r1, r2, … are the
// replicas found at the start, in order).
func (t *target) Do(ctx context.Context, a Action, id string) error {
	if ok, why := t.Can(a); !ok {
		return fmt.Errorf("%w: %s", errCannot, why)
	}
	return t.act(ctx, a, t.resolve(id))
}

// act runs the command of a on the target's replica id and remembers what
// Close has to undo.
func (t *target) act(ctx context.Context, a Action, id string) error {
	if err := t.run(ctx, a, id); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch a {
	case ActStoreStop, ActStoreStart:
		t.storeDown = a == ActStoreStop
	case ActPause, ActResume:
		t.paused[id] = a == ActPause
	}
	return nil
}

// resolve maps the plan's replica id rN to the N-th replica found at the
// start; other ids (an added replica's) are kept.
func (t *target) resolve(id string) string {
	if n, err := strconv.Atoi(strings.TrimPrefix(id, "r")); err == nil && strings.HasPrefix(id, "r") && n >= 1 && n <= len(t.names) {
		return t.names[n-1]
	}
	return id
}

// run runs the command of a with sh -c, {id} replaced by id. Its output is
// kept for the error when it fails.
func (t *target) run(ctx context.Context, a Action, id string) error {
	if id != "" && !safeID.MatchString(id) {
		return fmt.Errorf("lab: %s: replica id %q is not safe to put in a command", a.Flag(), id)
	}
	line := strings.ReplaceAll(t.t.Commands[a], "{id}", id)
	if t.progress != nil {
		t.progress("running " + a.Flag() + ": " + line)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 300 {
			msg = "…" + msg[len(msg)-300:]
		}
		return fmt.Errorf("%s %q: %v: %s", a.Flag(), line, err, msg)
	}
	return nil
}

// Crashes implements Deployment: the lab does not watch a target's
// processes.
func (t *target) Crashes() []string { return nil }

// Close implements Deployment: it starts the store again if the run
// stopped it and resumes the replicas it paused (a run interrupted
// mid-fault), with the commands given. It stops nothing.
func (t *target) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.mu.Lock()
	down := t.storeDown
	var paused []string
	for id, p := range t.paused {
		if p {
			paused = append(paused, id)
		}
	}
	t.mu.Unlock()
	var errs []error
	if down {
		errs = append(errs, t.undo(ctx, ActStoreStart, ""))
	}
	for _, id := range paused {
		errs = append(errs, t.undo(ctx, ActResume, id))
	}
	return errors.Join(errs...)
}

// undo runs the command of a for Close, or says that it could not.
func (t *target) undo(ctx context.Context, a Action, id string) error {
	if ok, why := t.Can(a); !ok {
		return fmt.Errorf("lab: the run left the target changed (%s %s): %s", a, id, why)
	}
	return t.act(ctx, a, id)
}
