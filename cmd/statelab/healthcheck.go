package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// runHealthcheck probes one URL and exits 0 when it answers 2xx, 1 when it
// does not. It exists for container images without a shell or curl (the
// project's image is distroless): Docker's HEALTHCHECK and Compose's
// healthcheck run the binary itself.
func runHealthcheck(ctx context.Context, m *Main, args []string) error {
	fs := newFlagSet(m, "healthcheck", "[--url URL] [--timeout D]")
	target := fs.String("url", "http://127.0.0.1:8080/healthz", "`URL` to GET; any 2xx answer is healthy")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return usageErrorf("healthcheck", "invalid value %q for --url: want an http:// or https:// URL", *target)
	case *timeout <= 0:
		return usageErrorf("healthcheck", "invalid value %v for --timeout: must be positive", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: %s answered %s", u.Redacted(), resp.Status)
	}
	return nil
}
