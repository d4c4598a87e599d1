// Command probe replays a set of hostile and careless HTTP/1 request shapes
// — request smuggling, header sizes, Transfer-Encoding variants,
// absolute-form targets, Upgrade without a 101, HTTP/1.0 without Host —
// against statelab's load balancer and, where it is installed, HAProxy,
// both in front of the same recording backend, and prints what each did
// side by side: the status(es) the client read and how many requests
// reached the backend ("unparsed" marks a request that reached it without
// the proxy's X-Forwarded-For, i.e. through a tunnel).
//
//	go run ./bench/probe                      # in-process balancer (statelab lb's defaults) + haproxy if on PATH
//	go run ./bench/probe --statelab ./statelab # the statelab binary's lb instead
//
// It exits 1 if statelab lb's verdict on any probe differs from the
// expected one (its first status and the most requests the backend may see).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/statelab/statelab/balancer"
)

func main() {
	statelab := flag.String("statelab", "", "path of the statelab binary to probe as `statelab lb` (default: the balancer package in process, same defaults)")
	haproxy := flag.String("haproxy", "haproxy", "HAProxy binary to compare with; empty to skip")
	flag.Parse()
	if err := runProbe(os.Stdout, *statelab, *haproxy); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// target is one proxy under probe.
type target struct {
	name string
	addr string
	stop func()
}

func runProbe(w io.Writer, statelabBin, haproxyBin string) error {
	rec := &recorder{}
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(backend) }()
	defer srv.Close()
	backendURL := "http://" + backend.Addr().String()

	lb, err := startStatelab(statelabBin, backendURL)
	if err != nil {
		return fmt.Errorf("starting statelab lb: %w", err)
	}
	defer lb.stop()
	targets := []target{lb}
	if haproxyBin != "" {
		if path, err := exec.LookPath(haproxyBin); err == nil {
			hp, err := startHAProxy(path, backend.Addr().String())
			if err != nil {
				return fmt.Errorf("starting haproxy: %w", err)
			}
			defer hp.stop()
			targets = append(targets, hp)
		} else {
			fmt.Fprintf(w, "(haproxy not found: %v; statelab lb only)\n\n", err)
		}
	}
	results, failed := probeAll(targets, rec)
	printTable(w, targets, results)
	if failed > 0 {
		return fmt.Errorf("statelab lb: %d probe(s) answered other than expected", failed)
	}
	return nil
}

// probeAll runs every probe against every target and counts statelab lb's
// unexpected verdicts.
func probeAll(targets []target, rec *recorder) ([][]verdict, int) {
	settle := func() { time.Sleep(50 * time.Millisecond) } // let a truncated request reach the recorder
	failed := 0
	var results [][]verdict
	for _, p := range probes() {
		row := make([]verdict, len(targets))
		for i, t := range targets {
			row[i] = run(t.addr, p, rec, settle)
		}
		if !expected(p, row[0]) {
			failed++
		}
		results = append(results, row)
	}
	return results, failed
}

// expected reports whether v is what statelab lb must do with p.
func expected(p probe, v verdict) bool {
	if v.First() != p.Want || len(v.Backend) > p.MaxBackend {
		return false
	}
	for _, s := range v.Backend {
		if !s.XFF {
			return false // reached the backend without being parsed
		}
	}
	return true
}

func printTable(w io.Writer, targets []target, results [][]verdict) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprint(tw, "group\tprobe\texpected")
	for _, t := range targets {
		fmt.Fprintf(tw, "\t%s", t.name)
	}
	fmt.Fprintln(tw)
	for i, p := range probes() {
		mark := ""
		if !expected(p, results[i][0]) {
			mark = "  << unexpected"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d (≤%d)", p.Group, p.Name, p.Want, p.MaxBackend)
		for _, v := range results[i] {
			fmt.Fprintf(tw, "\t%s", v)
		}
		fmt.Fprintln(tw, mark)
	}
	_ = tw.Flush()
}

// startStatelab starts statelab lb in front of backendURL: the binary if
// bin is set, else the balancer package with default settings.
func startStatelab(bin, backendURL string) (target, error) {
	if bin != "" {
		addr, admin := freeAddr(), freeAddr()
		cmd := exec.Command(bin, "lb", "--listen", addr, "--admin", admin, "--backend", backendURL)
		if err := cmd.Start(); err != nil {
			return target{}, err
		}
		stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
		if err := waitListening(addr); err != nil {
			stop()
			return target{}, err
		}
		return target{"statelab lb", addr, stop}, nil
	}
	lb, err := balancer.New(balancer.Config{
		Backends: []balancer.BackendConfig{{ID: "b", URL: backendURL}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return target{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return target{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = lb.Serve(ctx, ln); close(done) }()
	return target{"statelab lb", ln.Addr().String(), func() { cancel(); <-done; _ = lb.Close() }}, nil
}

// haproxyConfig is a plain HTTP reverse proxy with HAProxy's defaults
// (16 KiB buffers), adding X-Forwarded-For like statelab lb.
const haproxyConfig = `global
    maxconn 256
defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind %s
    default_backend be
backend be
    server s1 %s
`

func startHAProxy(bin, backendAddr string) (target, error) {
	dir, err := os.MkdirTemp("", "probe-haproxy")
	if err != nil {
		return target{}, err
	}
	addr := freeAddr()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, haproxyConfig, addr, backendAddr), 0o600); err != nil {
		return target{}, err
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	if err := cmd.Start(); err != nil {
		return target{}, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = os.RemoveAll(dir) }
	if err := waitListening(addr); err != nil {
		stop()
		return target{}, err
	}
	out, _ := exec.Command(bin, "-v").Output()
	name := "haproxy"
	if f := firstField(string(out), 2); f != "" {
		name += " " + f
	}
	return target{name, addr, stop}, nil
}

func firstField(s string, n int) string {
	var fields []string
	for _, f := range splitSpace(s) {
		fields = append(fields, f)
		if len(fields) > n {
			break
		}
	}
	if len(fields) > n {
		return fields[n]
	}
	return ""
}

func splitSpace(s string) []string {
	var out []string
	start := -1
	for i, r := range s + " " {
		if r == ' ' || r == '\n' || r == '\t' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("nothing listens on " + addr)
}
