package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// ErrUnavailable is returned by Client.Call when no replica of the called
// service gave a usable answer within the attempts and the deadline: every
// attempt failed to connect, timed out, or was answered 502, 503 or 504.
var ErrUnavailable = errors.New("dependency unavailable")

// Client defaults.
const (
	DefaultClientTimeout  = 2 * time.Second
	DefaultClientAttempts = 3
	maxResponseBytes      = 8 << 20
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Service names the called service in errors, e.g. "pricing".
	Service string
	// URLs are the base URLs of its replicas ("http://host:port"), or the
	// one URL of a balancer in front of them. Calls go to them in turn
	// (client-side round robin); a retry goes to the next one.
	URLs []string
	// Timeout bounds one attempt, from dialling to the last byte of the
	// answer. Default DefaultClientTimeout.
	Timeout time.Duration
	// Attempts is the number of tries of one call. Default
	// DefaultClientAttempts.
	Attempts int
	// Transport sends the requests; nil means a private keep-alive
	// transport.
	Transport http.RoundTripper
}

// Client calls another service's JSON API. Every call it makes must be
// idempotent (a GET, or a calculation that changes nothing): a call whose
// replica failed or was too slow is sent again, to the next replica. A
// Client is safe for concurrent use.
type Client struct {
	service  string
	urls     []string
	timeout  time.Duration
	attempts int
	hc       *http.Client
	next     atomic.Uint64
}

// NewClient returns a Client, or an error naming a malformed URL.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("httpapi: %s client: no URL", cfg.Service)
	}
	c := &Client{service: cfg.Service, timeout: cfg.Timeout, attempts: cfg.Attempts}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("httpapi: %s client: invalid URL %q: want http://host:port", cfg.Service, raw)
		}
		c.urls = append(c.urls, strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"))
	}
	if c.timeout <= 0 {
		c.timeout = DefaultClientTimeout
	}
	if c.attempts <= 0 {
		c.attempts = DefaultClientAttempts
	}
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: c.timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		}
	}
	c.hc = &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// URLs returns the base URLs the client calls.
func (c *Client) URLs() []string { return c.urls }

// Call sends method path (with in encoded as the JSON body when not nil)
// and decodes a 2xx answer into out (when not nil). A 4xx answer returns
// the service's *Error. When no attempt succeeds it returns an error
// wrapping ErrUnavailable (and the context's error if ctx ended); when ctx
// is cancelled by the caller it returns ctx.Err().
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("httpapi: %s client: encode request: %w", c.service, err)
		}
	}
	var last error
	for attempt := range c.attempts {
		if attempt > 0 && !sleepCtx(ctx, min(25*time.Millisecond<<(attempt-1), 200*time.Millisecond)) {
			break
		}
		base := c.urls[(c.next.Add(1)-1)%uint64(len(c.urls))]
		err, retry := c.try(ctx, method, base+path, body, out)
		if !retry {
			return err
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return fmt.Errorf("%s: %w: %w", c.service, ErrUnavailable, errors.Join(last, ctx.Err()))
}

// try makes one attempt and reports whether the call may be retried.
func (c *Client) try(ctx context.Context, method, target string, body []byte, out any) (err error, retry bool) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, target, rd)
	if err != nil {
		return fmt.Errorf("httpapi: %s client: %w", c.service, err), false
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err, true
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return err, true
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if out == nil {
			return nil, false
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("httpapi: %s answered undecodable JSON: %w", c.service, err), true
		}
		return nil, false
	case resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusServiceUnavailable,
		resp.StatusCode == http.StatusGatewayTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("%s answered %d", target, resp.StatusCode), true
	}
	var eb ErrorBody
	if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
		eb.Error.Code, eb.Error.Message = "dependency_error", fmt.Sprintf("%s answered %d", c.service, resp.StatusCode)
	}
	status := resp.StatusCode
	if status >= 500 {
		// The callee's bug is not the caller's client's fault: report a
		// gateway error rather than pass a 500 through.
		status = http.StatusBadGateway
	}
	return &Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}, false
}

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
