package httpapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets TestInstanceDiffersInNextProcess run this test binary as a
// child that only prints its instance identity.
func TestMain(m *testing.M) {
	if os.Getenv("STATELAB_PRINT_INSTANCE") == "1" {
		os.Stdout.WriteString(Instance())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestHealthAnswersNameTheInstance(t *testing.T) {
	s, err := NewService(ServiceConfig{ID: "p1", Name: "pricing"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/healthz"} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if got := w.Header().Get(InstanceHeader); w.Code != http.StatusOK || got == "" || got != Instance() {
			t.Fatalf("GET %s: status %d, %s %q, want 200 and %q", path, w.Code, InstanceHeader, got, Instance())
		}
	}
}

func TestInstanceDiffersInNextProcess(t *testing.T) {
	seen := map[string]bool{Instance(): true}
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "STATELAB_PRINT_INSTANCE=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(string(out))
		if id == "" || seen[id] {
			t.Fatalf("process %d has instance %q, want a new non-empty one (seen %v)", i+2, id, seen)
		}
		seen[id] = true
	}
}
