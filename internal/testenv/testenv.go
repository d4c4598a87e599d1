// Package testenv tells tests which external services they may use: the Redis
// and PostgreSQL servers named by STATELAB_TEST_REDIS and
// STATELAB_TEST_POSTGRES. Without them a test skips with a message saying what
// to set; with STATELAB_REQUIRE_SERVICES=1 it fails instead, so CI can never
// pass by skipping.
package testenv

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/machine"
)

// RedisURL returns the Redis URL tests may use (STATELAB_TEST_REDIS), or
// skips (fails under STATELAB_REQUIRE_SERVICES=1) when it is not set.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	return service(tb, "STATELAB_TEST_REDIS", "redis://127.0.0.1:6379/0")
}

// PostgresURL returns the PostgreSQL URL tests may use
// (STATELAB_TEST_POSTGRES), or skips (fails under STATELAB_REQUIRE_SERVICES=1)
// when it is not set.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	return service(tb, "STATELAB_TEST_POSTGRES", "postgres://root@127.0.0.1:5432/test?sslmode=disable")
}

// Required reports whether STATELAB_REQUIRE_SERVICES=1 asks tests to fail
// rather than skip when something they need is missing.
func Required() bool { return os.Getenv("STATELAB_REQUIRE_SERVICES") == "1" }

// Need skips the test (fails it under STATELAB_REQUIRE_SERVICES=1) with why,
// when ok is false. Tests use it for binaries such as redis-server on PATH.
func Need(tb testing.TB, ok bool, why string) {
	tb.Helper()
	if ok {
		return
	}
	if Required() {
		tb.Fatalf("%s (STATELAB_REQUIRE_SERVICES=1, so this fails instead of skipping)", why)
	}
	tb.Skip(why)
}

func service(tb testing.TB, env, example string) string {
	tb.Helper()
	v := os.Getenv(env)
	Need(tb, v != "", "set "+env+" (e.g. "+env+"="+example+") to run this test")
	return v
}

// FreePort returns a loopback TCP port that is free now, for a process that
// must be told its port rather than report the one it bound. It is drawn
// from outside the kernel's ephemeral range (machine.FreePort), so the
// connections and port-0 listeners of other tests cannot take it before
// the process binds it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := machine.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// FreeAddr is FreePort as a host:port address on 127.0.0.1.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(tb))
}

// Eventually calls cond every 10 ms until it returns true, and fails tb
// naming what it waited for when within passes first. Tests wait for a
// condition this way, never for a fixed time.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// ServeTCP listens on a free loopback port and calls handle in a goroutine
// of its own for every connection, until the test ends (the listener is
// closed then; handle closes its connection). It returns the listener.
func ServeTCP(tb testing.TB, handle func(net.Conn)) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln
}
