// Command idleconns opens many keep-alive HTTP/1.1 connections to one
// address, sends one GET on each and reads the answer, then holds them all
// open and idle until it is interrupted: the client side of the idle
// connection memory benchmark (bench/lbrss.sh). It prints "ready N" once N
// connections have had their answer.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "host:port to connect to")
	n := flag.Int("n", 10000, "connections to open")
	par := flag.Int("parallel", 64, "connections opened at once")
	flag.Parse()
	if *n < 1 || *par < 1 {
		fmt.Fprintln(os.Stderr, "idleconns: -n and -parallel must be positive")
		os.Exit(2)
	}
	conns, err := open(*addr, *n, *par)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", len(conns))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	for _, c := range conns {
		c.Close()
	}
}

// open opens n connections, par at a time, each after one answered GET.
func open(addr string, n, par int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := oneRequest(addr)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return conns, nil
}

// oneRequest dials addr, sends a keep-alive GET / and reads the whole answer.
func oneRequest(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		c.Close()
		return nil, fmt.Errorf("GET on %s: status %d, close %v, err %v", addr, resp.StatusCode, resp.Close, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
