package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/testenv"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/readyz":
			http.Error(w, "draining", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	closed := "http://" + testenv.FreeAddr(t) + "/healthz" // nothing listens there
	tests := []struct {
		name     string
		args     []string
		env      string // STATELAB_URL, when not empty
		wantCode int
		wantErr  string // in stderr
	}{
		{"healthy", []string{"--url", srv.URL + "/healthz"}, "", 0, ""},
		{"healthy from the environment", nil, srv.URL + "/healthz", 0, ""},
		{"503 is unhealthy", []string{"--url", srv.URL + "/readyz"}, "", 1, "503"},
		{"404 is unhealthy", []string{"--url", srv.URL + "/nope"}, "", 1, "404"},
		{"nothing listening", []string{"--url", closed, "--timeout", "2s"}, "", 1, "healthcheck:"},
		{"not a URL", []string{"--url", "127.0.0.1:8080/healthz"}, "", 2, "--url"},
		{"bad scheme", []string{"--url", "ftp://127.0.0.1/"}, "", 2, "--url"},
		{"bad timeout", []string{"--url", srv.URL, "--timeout", "0s"}, "", 2, "--timeout"},
		{"positional argument", []string{srv.URL}, "", 2, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("STATELAB_URL", tt.env)
			}
			var stdout, stderr bytes.Buffer
			code := NewMain(&stdout, &stderr).Run(context.Background(), append([]string{"healthcheck"}, tt.args...))
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			if tt.wantCode == 2 && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 1 {
				t.Fatalf("usage error should be one line plus the hint, got %q", stderr.String())
			}
		})
	}
}
