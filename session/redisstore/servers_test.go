package redisstore_test

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
)

// redisProc is a redis-server (or sentinel) process a test started from the
// binary on PATH. It is killed at cleanup.
type redisProc struct {
	t    testing.TB
	addr string
	bin  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// redisServerBin returns redis-server from PATH, or skips the test.
func redisServerBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	return bin
}

// startRedisProc starts redis-server on 127.0.0.1:port with the given extra
// arguments (a config file first, if any, then --name value pairs), in dir,
// without persistence, and waits until it answers PING.
func startRedisProc(t testing.TB, port int, dir string, args ...string) *redisProc {
	t.Helper()
	p := &redisProc{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), bin: redisServerBin(t)}
	p.args = append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		// A replica that (re)joins syncs at once, not after the default
		// five seconds of waiting for others.
		"--repl-diskless-sync-delay", "0")
	p.start()
	t.Cleanup(p.kill)
	p.waitPing()
	return p
}

func (p *redisProc) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start redis-server %v: %v", p.args, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
}

// kill stops the process abruptly (SIGKILL), as a crash would, and waits
// for it to exit.
func (p *redisProc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// restart starts the process again with the same arguments and waits until
// it answers.
func (p *redisProc) restart() {
	p.t.Helper()
	p.kill()
	p.start()
	p.waitPing()
}

// client returns a client of this one server (no retries), closed at
// cleanup.
func (p *redisProc) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, DialTimeout: time.Second})
	p.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (p *redisProc) waitPing() {
	p.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1})
	defer c.Close()
	waitFor(p.t, 10*time.Second, "redis-server on "+p.addr+" to answer", func() (bool, error) {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		select {
		case <-exited:
			p.t.Fatalf("redis-server %v exited", p.args)
		default:
		}
		err := c.Ping(context.Background()).Err()
		return err == nil, err
	})
}

// waitFor polls cond until it is true, failing t after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s (last error: %v)", within, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infoField returns one field of INFO section from the server at c.
func infoField(ctx context.Context, c *redis.Client, section, field string) (string, error) {
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v, nil
		}
	}
	return "", nil
}
