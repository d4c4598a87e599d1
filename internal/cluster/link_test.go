package cluster

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// echoProxy starts an echo server (standing for the store) and a fault
// proxy in front of it.
func echoProxy(t *testing.T) *faultProxy {
	t.Helper()
	ln := testenv.ServeTCP(t, func(c net.Conn) { io.Copy(c, c); c.Close() })
	p, err := newFaultProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// roundTrip writes a line on c and reads the echo, returning how long it
// took.
func roundTrip(c net.Conn, line string) (time.Duration, error) {
	start := time.Now()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return 0, err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if got != line+"\n" {
		return 0, errors.New("bad echo " + got)
	}
	return time.Since(start), nil
}

// TestProxyDelay: with a delay set, every round trip on an open connection
// takes at least that long and still carries the bytes in order; removed,
// the link works again.
func TestProxyDelay(t *testing.T) {
	p := echoProxy(t)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := roundTrip(c, "before"); err != nil {
		t.Fatal(err)
	}
	const delay = 120 * time.Millisecond
	p.delay.Store(int64(delay))
	for _, line := range []string{"one", strings.Repeat("x", 100<<10)} {
		took, err := roundTrip(c, line)
		if err != nil {
			t.Fatal(err)
		}
		if took < delay {
			t.Errorf("round trip of %d bytes took %v with a %v delay on the link", len(line), took, delay)
		}
	}
	p.delay.Store(0)
	if _, err := roundTrip(c, "after"); err != nil {
		t.Fatal(err)
	}
}

// TestProxyResets: with every new connection reset, a client's first read
// fails with "connection reset"; open connections are reset too; with the
// share back at zero, new connections work.
func TestProxyResets(t *testing.T) {
	p := echoProxy(t)
	open, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := roundTrip(open, "hello"); err != nil {
		t.Fatal(err)
	}
	p.reset.Store(1e6)
	if n := p.resetOpen(1); n != 2 { // the client's and the server's side
		t.Errorf("resetOpen reset %d connections, want 2", n)
	}
	if _, err := roundTrip(open, "again"); err == nil {
		t.Error("an open connection survived a reset")
	}
	// The reset may reach the client while it dials or at its first read.
	c, err := net.Dial("tcp", p.addr)
	if err == nil {
		defer c.Close()
		_, err = roundTrip(c, "new")
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Errorf("new connection: %v, want connection reset", err)
	}
	if p.resets.Load() < 3 {
		t.Errorf("resets counted %d, want at least 3", p.resets.Load())
	}
	p.reset.Store(0)
	c2, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := roundTrip(c2, "healed"); err != nil {
		t.Fatalf("after the resets stopped: %v", err)
	}
}

// TestStoreLinkErrors: the link controls refuse a strategy without a store,
// a store without a proxied link, and out-of-range values.
func TestStoreLinkErrors(t *testing.T) {
	ctx := context.Background()
	c := bareCluster(t, strategy.Sticky, Config{})
	c.store = &storeRuntime{fault: noStore{}, info: StoreInfo{Kind: "memory"}}
	if err := c.SlowStore(ctx, time.Millisecond); !errors.Is(err, ErrNoStoreLink) {
		t.Errorf("SlowStore without a store: %v, want ErrNoStoreLink", err)
	}
	d := bareCluster(t, strategy.Database, Config{})
	d.store = &storeRuntime{fault: &sqliteLock{}, info: StoreInfo{Kind: "sqlite", External: true, Up: true}}
	if err := d.FlakyStore(ctx, 0.5); !errors.Is(err, ErrNoStoreLink) {
		t.Errorf("FlakyStore on SQLite: %v, want ErrNoStoreLink", err)
	}
	if err := d.SlowStore(ctx, -time.Second); !errors.Is(err, ErrBadConfig) {
		t.Errorf("negative delay: %v, want ErrBadConfig", err)
	}
	if err := d.FlakyStore(ctx, 1.5); !errors.Is(err, ErrBadConfig) {
		t.Errorf("share 1.5: %v, want ErrBadConfig", err)
	}
}
