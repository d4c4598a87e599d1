//go:build unix

package balancer

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// identityServer is a backend process stand-in: an HTTP server on addr
// whose /readyz names instance in InstanceHeader ("": no header) and
// counts the checks it answered.
type identityServer struct {
	srv    *http.Server
	addr   string
	checks atomic.Int64
}

// startIdentityServer listens on addr ("127.0.0.1:0" for a new port) with
// SO_REUSEPORT, so that a second server can take over the same port before
// the first closes: a restart no check can see as a refused connection.
func startIdentityServer(t *testing.T, addr, instance string) *identityServer {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &identityServer{addr: ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			s.checks.Add(1)
			if instance != "" {
				w.Header().Set(InstanceHeader, instance)
			}
		}
		w.Write([]byte("ok"))
	})}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// restartLB is a balancer with a one-hour slow start in front of the
// backend at addr, checking /readyz often; a high Fall keeps a failing
// check from marking it down, so only a restart signal can start the ramp.
func restartLB(t *testing.T, addr string, checks bool) (*Balancer, string) {
	t.Helper()
	cfg := Config{SlowStart: time.Hour, Fall: 1000, EjectAfter: -1, Logger: testLogger(t),
		Backends: []BackendConfig{{ID: "r1", URL: "http://" + addr}}}
	if checks {
		cfg.HealthPath, cfg.HealthInterval = "/readyz", 5*time.Millisecond
	}
	return startLB(t, cfg)
}

// TestRestartBetweenChecksByInstance restarts a backend server on the same
// port between two health checks, the new server listening before the old
// one closes (so no check ever fails): with a new instance identity the
// backend ramps up again under its slow start; with the same identity, or
// none, it keeps its full weight.
func TestRestartBetweenChecksByInstance(t *testing.T) {
	tests := []struct {
		name         string
		before, then string
		wantRestarts uint64
	}{
		{"new instance ramps", "boot-a", "boot-b", 1},
		{"same instance does not", "boot-a", "boot-a", 0},
		{"no identity does not", "", "", 0},
		{"identity appearing does not", "", "boot-b", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := startIdentityServer(t, "127.0.0.1:0", tt.before)
			lb, _ := restartLB(t, old.addr, true)
			eventually(t, "three checks of the first server", func() bool { return old.checks.Load() >= 3 })
			if st := backendStatus(t, lb, "r1"); st.EffectiveWeight != 1 || st.Restarts != 0 {
				t.Fatalf("before the restart: %+v, want full weight and no restart", st)
			}
			restarted := startIdentityServer(t, old.addr, tt.then)
			old.srv.Close()
			eventually(t, "three checks of the restarted server", func() bool { return restarted.checks.Load() >= 3 })
			st := backendStatus(t, lb, "r1")
			if st.Restarts != tt.wantRestarts || !st.Healthy {
				t.Fatalf("after the restart: %+v, want %d restarts noticed and healthy", st, tt.wantRestarts)
			}
			ramping := st.EffectiveWeight < 0.2
			if ramping != (tt.wantRestarts > 0) || (!ramping && st.EffectiveWeight != 1) {
				t.Fatalf("after the restart: effective weight %v, want ramping=%v (10%% at first, else 1)", st.EffectiveWeight, tt.wantRestarts > 0)
			}
		})
	}
}

// TestRestartSeenAsRefusedConnection stops a backend that sends no
// identity and starts it again on the same port: a connection refused in
// between, seen by an active check or by a proxied request, makes its
// next answer start the slow start although it never looked down.
func TestRestartSeenAsRefusedConnection(t *testing.T) {
	for _, checks := range []bool{true, false} {
		name := map[bool]string{true: "by active check", false: "by proxied request"}[checks]
		t.Run(name, func(t *testing.T) {
			old := startIdentityServer(t, "127.0.0.1:0", "")
			lb, url := restartLB(t, old.addr, checks)
			c := newClient(t)
			if code, _, _ := get(t, c, url+"/"); code != http.StatusOK {
				t.Fatalf("before the restart: status %d", code)
			}
			old.srv.Close()
			b := lb.defaultGroup.pool.Load().byID["r1"]
			// The first proxied request may find only the closed keep-alive
			// connection; the next dials and is refused.
			eventually(t, "a refused connection", func() bool {
				if !checks {
					if code, _, _ := get(t, c, url+"/"); code != http.StatusBadGateway && code != http.StatusServiceUnavailable {
						t.Fatalf("with the backend stopped: status %d, want 502 or 503", code)
					}
				}
				return b.sawRefused.Load()
			})
			if st := backendStatus(t, lb, "r1"); st.Restarts != 0 || !st.Healthy {
				t.Fatalf("with the backend stopped: %+v, want healthy (high Fall) and no restart yet", st)
			}
			startIdentityServer(t, old.addr, "")
			if !checks {
				if code, _, _ := get(t, c, url+"/"); code != http.StatusOK {
					t.Fatalf("after the restart: status %d", code)
				}
			}
			eventually(t, "the restart noticed", func() bool { return backendStatus(t, lb, "r1").Restarts == 1 })
			if w := backendStatus(t, lb, "r1").EffectiveWeight; w >= 0.2 {
				t.Fatalf("after the restart: effective weight %v, want the slow start's first 10%%", w)
			}
		})
	}
}
