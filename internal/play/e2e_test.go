package play

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// chromiumPath is the browser the end-to-end test drives (Debian's
// chromium package); STATELAB_CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("STATELAB_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// browserTestTools returns node and the e2e directory with playwright-core
// in it, or skips t (fails it under STATELAB_REQUIRE_SERVICES) when one of
// the browser test's tools is missing, and in -short mode.
func browserTestTools(t *testing.T) (node, e2eDir string) {
	t.Helper()
	if testing.Short() {
		t.Skip("the browser test starts real clusters; skipped in -short mode")
	}
	_, err := os.Stat(chromiumPath())
	testenv.Need(t, err == nil, "the browser test needs Chromium at "+chromiumPath()+" (apt-get install chromium)")
	node, err = exec.LookPath("node")
	testenv.Need(t, err == nil, "the browser test needs node on PATH (apt-get install nodejs npm)")
	e2eDir, err = filepath.Abs("e2e")
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core", "package.json"))
	testenv.Need(t, err == nil, "the browser test needs playwright-core: run (cd internal/play/e2e && npm ci)")
	return node, e2eDir
}

// TestPlaygroundInBrowser starts the playground over a real cluster and
// runs e2e/play.test.mjs in headless Chromium: add items, kill the replica
// that served them, and find the cart gone under sticky and intact under
// cache. STATELAB_PLAY_SCREENSHOT=FILE (relative to the module root) also
// saves a screenshot.
func TestPlaygroundInBrowser(t *testing.T) {
	node, e2eDir := browserTestTools(t)
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "the browser test's cache round needs redis-server on PATH")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	bin := testenv.StatelabBinary(t)
	t.Logf("go build statelab: %s", time.Since(began).Round(time.Millisecond))

	s, err := New(Config{
		Strategy: "sticky",
		Replicas: 3,
		Start: NewClusterStarter(cluster.Config{
			Binary: bin,
			Dir:    t.TempDir(),
			Logger: slog.New(slog.DiscardHandler),
			// A ramp far longer than the page's poll, so a busy machine
			// cannot end it before the page shows the restarted
			// replica's slow-start weight.
			SlowStart: time.Minute,
		}),
		Shoppers: NewLabShoppers(),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	began = time.Now()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("sticky cluster started: %s", time.Since(began).Round(time.Millisecond))
	hs := httptest.NewServer(s.Handler())
	// Close the playground first so its event streams end, then the
	// server (Cleanup runs last-registered first).
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	cmd := exec.CommandContext(ctx, node, "play.test.mjs", hs.URL+"/")
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath())
	if shot := os.Getenv("STATELAB_PLAY_SCREENSHOT"); shot != "" {
		if !filepath.IsAbs(shot) {
			// Relative to the module root, where make runs, not to this
			// package's directory, where go test runs.
			shot = filepath.Join("..", "..", shot)
		}
		abs, err := filepath.Abs(shot)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "PLAY_SCREENSHOT="+abs)
	}
	runBrowserScript(t, cmd, s)
}

// runBrowserScript runs cmd (node and a test script), logs its output, and
// fails t with the playground's event log when it fails.
func runBrowserScript(t *testing.T, cmd *exec.Cmd, s *Server) {
	t.Helper()
	began := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s (%s):\n%s", strings.Join(cmd.Args, " "), time.Since(began).Round(time.Millisecond), out)
	if err != nil {
		var log []string
		for _, e := range s.Events() {
			log = append(log, string(e.Kind)+": "+e.Text)
		}
		t.Fatalf("browser test failed: %v\nplayground log:\n%s", err, strings.Join(log, "\n"))
	}
}
