package netns

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a tiny TCP server or client inside
// a namespace instead of running tests: "listen ADDR" or "dial ADDR".
const helperEnv = "STATELAB_NETNS_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

func helper(spec string) int {
	verb, addr, _ := strings.Cut(spec, " ")
	switch verb {
	case "listen":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready")
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	case "dial":
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "hello\n" {
			fmt.Println("bad answer", line, err)
			return 1
		}
		return 0
	}
	return 2
}

// testNetwork creates a Network with a random name on a random
// 10.213.x.0/24 and closes it at cleanup; it skips without root.
func testNetwork(t *testing.T) *Network {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipping: %v (the lab then runs every process on loopback)", err)
	}
	name := "t" + strings.ToLower(rand.Text()[:5])
	b := make([]byte, 1)
	rand.Read(b)
	n, err := New(context.Background(), name, netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", b[0])))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// serve starts the helper server in h on port 7000 and stops it at
// cleanup.
func serve(t *testing.T, h *Host) string {
	t.Helper()
	addr := net.JoinHostPort(h.Addr.String(), "7000")
	cmd := h.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=listen "+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server in %s: %v", h.Namespace, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("server in %s: %q, %v", h.Namespace, line, err)
	}
	return addr
}

// dialFrom reports whether a client in h (nil: this process, in the root
// namespace) reaches addr.
func dialFrom(t *testing.T, h *Host, addr string) bool {
	t.Helper()
	if h == nil {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	cmd := h.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=dial "+addr)
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run client in %s: %v", h.Namespace, err)
	}
	return err == nil
}

// TestCutHeal builds a network of two hosts, serves in one, and checks who
// reaches it as links are cut and healed.
func TestCutHeal(t *testing.T) {
	n := testNetwork(t)
	ctx := context.Background()
	a, err := n.AddHost(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.AddHost(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, a)
	steps := []struct {
		what            string
		do              func() error
		fromB, fromRoot bool
	}{
		{"connected", func() error { return nil }, true, true},
		{"a cut from b", func() error { return n.Cut(ctx, a, b) }, false, true},
		{"cut again", func() error { return n.Cut(ctx, a, b) }, false, true},
		{"healed", func() error { return n.Heal(ctx, a, b) }, true, true},
		{"healed again", func() error { return n.Heal(ctx, a, b) }, true, true},
		{"a cut from the root namespace", func() error { return n.Cut(ctx, a, nil) }, true, false},
		{"healed from the root namespace", func() error { return n.Heal(ctx, a, nil) }, true, true},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if got := dialFrom(t, b, addr); got != s.fromB {
			t.Errorf("%s: b reaches a = %v, want %v", s.what, got, s.fromB)
		}
		if got := dialFrom(t, nil, addr); got != s.fromRoot {
			t.Errorf("%s: the root namespace reaches a = %v, want %v", s.what, got, s.fromRoot)
		}
	}
}

// TestLeftovers checks that a network a killed run left behind is removed
// by the next New under the same name, and that Close removes everything.
func TestLeftovers(t *testing.T) {
	n := testNetwork(t)
	ctx := context.Background()
	if _, err := n.AddHost(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// Another run under the same name, as after a crash of the first.
	again, err := New(ctx, n.name, n.subnet)
	if err != nil {
		t.Fatalf("New over a left-over network: %v", err)
	}
	if _, err := again.AddHost(ctx, "a"); err != nil {
		t.Fatalf("AddHost over a left-over host: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	links, _ := exec.Command("ip", "link", "show").Output()
	if p := linkPrefix(n.name); strings.Contains(string(out), p) || strings.Contains(string(links), p) {
		t.Fatalf("after Close, namespaces or links named %s* remain:\n%s\n%s", p, out, links)
	}
}

func TestBadNames(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx := context.Background()
	for _, name := range []string{"", "UPPER", "toolong7", "a-b"} {
		if _, err := New(ctx, name, netip.MustParsePrefix("10.213.250.0/24")); !errors.Is(err, ErrBadName) {
			t.Errorf("New(%q): err = %v, want ErrBadName", name, err)
		}
	}
	if _, err := New(ctx, "x", netip.MustParsePrefix("10.213.0.0/16")); err == nil {
		t.Errorf("New with a /16 succeeded")
	}
}
