package play

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// TestGameViewInBrowser runs e2e/game.test.mjs in headless Chromium
// against the playground's game view over real game clusters (no cart
// cluster is started): under checkpoint, play in the lobby, kill its
// owner with the page's button and watch the room move to another replica
// at a higher epoch; under memory, watch it start over.
func TestGameViewInBrowser(t *testing.T) {
	node, e2eDir := browserTestTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := testenv.StatelabBinary(t)
	s, err := New(Config{
		Strategy:  "sticky",
		Replicas:  3,
		Start:     func(context.Context, strategy.Strategy, int) (Cluster, error) { return nil, ErrNoCluster },
		StartGame: NewGameStarter(cluster.Config{Binary: bin, Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cmd := exec.CommandContext(ctx, node, "game.test.mjs", hs.URL+"/")
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath())
	runBrowserScript(t, cmd, s)
}
