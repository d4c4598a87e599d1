package cart

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
)

// TestShopPageInBrowser shops at "/" in headless Chromium
// (testdata/shop.test.mjs): page through and search the catalog, add,
// change a quantity, remove, check out, by accessible names and keyboard.
// It uses Debian's Chromium (STATELAB_CHROMIUM overrides the path) and the
// playwright-core installed for the playground's browser test.
func TestShopPageInBrowser(t *testing.T) {
	chromium := os.Getenv("STATELAB_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, err := os.Stat(chromium)
	testenv.Need(t, err == nil, "the shop browser test needs Chromium at "+chromium+" (apt-get install chromium)")
	node, err := exec.LookPath("node")
	testenv.Need(t, err == nil, "the shop browser test needs node on PATH")
	pw, err := filepath.Abs(filepath.Join("..", "play", "e2e", "node_modules", "playwright-core", "index.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(pw)
	testenv.Need(t, err == nil, "the shop browser test needs playwright-core: run (cd internal/play/e2e && npm ci)")

	mgr, err := session.NewManager(newFlakyStore(t), session.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(newServer(t, Config{ID: "shop-r1", StoreName: "memory", Manager: mgr, Logger: quiet}))
	t.Cleanup(hs.Close)

	cmd := exec.Command(node, filepath.Join("testdata", "shop.test.mjs"), hs.URL+"/")
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_CORE="+pw, "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser test failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
