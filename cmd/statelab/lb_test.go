package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
)

func TestLBBadFlags(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	ok := []string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}
	tests := []struct {
		name string
		args []string
		want string // in the one-line message
	}{
		{"no backend", ok, "--backend"},
		{"unknown flag", []string{"--colour", "red"}, "colour"},
		{"bad policy", append([]string{"--backend", "http://127.0.0.1:1", "--policy", "random"}, ok...), "--policy"},
		{"bad backend URL", append([]string{"--backend", "127.0.0.1:1"}, ok...), "invalid backend"},
		{"bad duration", []string{"--health-interval", "soon"}, "health-interval"},
		{"bad health path", append([]string{"--backend", "http://127.0.0.1:1", "--health-path", "readyz"}, ok...), "--health-path"},
		{"admin address taken", []string{"--backend", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin", busy.Addr().String()}, "--admin"},
		{"admin address unresolvable", []string{"--backend", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin", "no-such-host.invalid:1"}, "--admin"},
		{"missing backend CA", append([]string{"--backend", "https://127.0.0.1:1", "--backend-ca", "/no/such/ca.pem"}, ok...), "--backend-ca"},
		{"CA and insecure", append([]string{"--backend", "https://127.0.0.1:1", "--backend-ca", "/etc/hostname", "--backend-insecure"}, ok...), "--backend-insecure"},
		{"relative deny path", append([]string{"--backend", "http://127.0.0.1:1", "--deny-path", "metrics"}, ok...), "--deny-path"},
		{"zero body limit", append([]string{"--backend", "http://127.0.0.1:1", "--max-body-bytes", "0"}, ok...), "--max-body-bytes"},
		{"buffer above body limit", append([]string{"--backend", "http://127.0.0.1:1", "--max-body-bytes", "1000", "--buffer-body-bytes", "2000"}, ok...), "--buffer-body-bytes"},
		{"tiny header limit", append([]string{"--backend", "http://127.0.0.1:1", "--max-header-bytes", "10"}, ok...), "--max-header-bytes"},
		{"admin off loopback without token", []string{"--backend", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"}, "--admin"},
		{"short admin token", append([]string{"--backend", "http://127.0.0.1:1", "--admin-token", "short"}, ok...), "--admin-token"},
		{"missing admin token file", append([]string{"--backend", "http://127.0.0.1:1", "--admin-token-file", "/no/such/token"}, ok...), "--admin-token-file"},
		{"positional argument", append([]string{"--backend", "http://127.0.0.1:1", "extra"}, ok...), "unexpected argument"},
		{"pool without policy", append([]string{"--backend", "http://127.0.0.1:1", "--pool", "pricing"}, ok...), "--pool"},
		{"pool bad policy", append([]string{"--backend", "http://127.0.0.1:1", "--pool", "pricing=random"}, ok...), "--pool"},
		{"pool twice", append([]string{"--backend", "http://127.0.0.1:1", "--pool", "p=hash", "--pool", "p=sticky"}, ok...), "--pool"},
		{"pool backend of unknown pool", append([]string{"--backend", "http://127.0.0.1:1", "--pool-backend", "p=http://127.0.0.1:2"}, ok...), "--pool-backend"},
		{"route to unknown pool", append([]string{"--backend", "http://127.0.0.1:1", "--route", "/api/quote=p"}, ok...), "--route"},
		{"route without slash", append([]string{"--backend", "http://127.0.0.1:1", "--pool", "p=hash", "--route", "api=p"}, ok...), "--route"},
		{"tls cert without key", append([]string{"--backend", "http://127.0.0.1:1", "--tls-cert", "/etc/hostname"}, ok...), "--tls-key"},
		{"self-signed and cert", append([]string{"--backend", "http://127.0.0.1:1", "--tls-self-signed", "--tls-cert", "a", "--tls-key", "b"}, ok...), "--tls-self-signed"},
		{"missing tls cert", append([]string{"--backend", "http://127.0.0.1:1", "--tls-cert", "/no/such.pem", "--tls-key", "/no/such.key"}, ok...), "--tls-cert"},
		{"redirect without tls", append([]string{"--backend", "http://127.0.0.1:1", "--redirect-http", "127.0.0.1:0"}, ok...), "--redirect-http"},
		{"retry budget above 1", append([]string{"--backend", "http://127.0.0.1:1", "--retry-budget", "1.5"}, ok...), "--retry-budget"},
		{"negative retry budget min", append([]string{"--backend", "http://127.0.0.1:1", "--retry-budget-min", "-1"}, ok...), "--retry-budget-min"},
		{"negative maxconn", append([]string{"--backend", "http://127.0.0.1:1", "--backend-maxconn", "-2"}, ok...), "--backend-maxconn"},
		{"zero queue timeout", append([]string{"--backend", "http://127.0.0.1:1", "--queue-timeout", "0s"}, ok...), "--queue-timeout"},
		{"negative slow start", append([]string{"--backend", "http://127.0.0.1:1", "--slow-start", "-1s"}, ok...), "--slow-start"},
		{"bad eject-on", append([]string{"--backend", "http://127.0.0.1:1", "--eject-on", "4xx"}, ok...), "--eject-on"},
		{"zero ejected share", append([]string{"--backend", "http://127.0.0.1:1", "--max-ejected-share", "0"}, ok...), "--max-ejected-share"},
		{"negative eject latency", append([]string{"--backend", "http://127.0.0.1:1", "--eject-latency", "-1s"}, ok...), "--eject-latency"},
		{"retry-all of unknown pool", append([]string{"--backend", "http://127.0.0.1:1", "--retry-all", "p"}, ok...), "--retry-all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := NewMain(&stdout, &stderr).Run(context.Background(), append([]string{"lb"}, tt.args...))
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "statelab lb: ") || !strings.Contains(lines[0], tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2, one error line naming %q and the usage hint", code, stderr.String(), tt.want)
			}
		})
	}
}

func TestLBServesAndStops(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "r1")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	listen, admin := testenv.FreeAddr(t), testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- NewMain(io.Discard, io.Discard).Run(ctx, []string{"lb", "--listen", listen, "--admin", admin,
			"--policy", "sticky", "--backend", "r1=" + backend.URL})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/")
		if err == nil {
			resp.Body.Close()
			if resp.Header.Get("X-Served-By") != "r1" {
				t.Fatalf("served by %q", resp.Header.Get("X-Served-By"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lb never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + admin + "/admin/backends")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"id":"r1"`) {
		t.Fatalf("admin list %s", body)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after cancel", code)
	}
}

// TestLBHTTPSBackendWithPrivateCA runs `statelab lb` in front of a real TLS
// backend whose certificate is signed by a private CA given with
// --backend-ca.
func TestLBHTTPSBackendWithPrivateCA(t *testing.T) {
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "over tls")
	}))
	t.Cleanup(backend.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{{"--backend-ca", ca}, {"--backend-insecure"}} {
		t.Run(flags[0], func(t *testing.T) {
			listen, admin := testenv.FreeAddr(t), testenv.FreeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			go func() {
				done <- NewMain(io.Discard, io.Discard).Run(ctx, append([]string{"lb", "--listen", listen, "--admin", admin,
					"--backend", "s=" + backend.URL}, flags...))
			}()
			deadline := time.Now().Add(10 * time.Second)
			for {
				resp, err := http.Get("http://" + listen + "/")
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(body) != "over tls" {
						t.Fatalf("got %d %q", resp.StatusCode, body)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("lb never answered: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit %d", code)
			}
		})
	}
}

// TestLBAdminToken: with a token (from a file or STATELAB_ADMIN_TOKEN) the
// admin API answers 401 without it, and the token is what allows an admin
// address off loopback.
func TestLBAdminToken(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(backend.Close)
	const token = "0123456789abcdef-token"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags []string
		env   string
		host  string // admin host
	}{
		{"token file, loopback", []string{"--admin-token-file", file}, "", "127.0.0.1"},
		{"environment, all interfaces", nil, token, "0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("STATELAB_ADMIN_TOKEN", tt.env)
			}
			_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
			admin := net.JoinHostPort(tt.host, port)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			var stderr bytes.Buffer
			go func() {
				done <- NewMain(io.Discard, &stderr).Run(ctx, append([]string{"lb", "--listen", testenv.FreeAddr(t), "--admin", admin,
					"--backend", backend.URL}, tt.flags...))
			}()
			url := "http://127.0.0.1:" + port + "/admin/backends"
			deadline := time.Now().Add(10 * time.Second)
			for {
				resp, err := http.Get(url)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusUnauthorized {
						t.Fatalf("without the token: %d, want 401", resp.StatusCode)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("admin never answered: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("with the token: %d, want 200", resp.StatusCode)
			}
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
		})
	}
}
