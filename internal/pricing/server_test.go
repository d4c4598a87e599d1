package pricing

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/httpapi"
)

func newTestServer(t *testing.T, id string) (*Server, *httptest.Server) {
	t.Helper()
	srv, err := NewServer(Config{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts
}

func post(t *testing.T, url, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestQuoteEndpoint(t *testing.T) {
	_, ts := newTestServer(t, "p1")
	want := Price(catalog.New(), []Line{{SKU: "SKU-0001", Qty: 2}, {SKU: "SKU-0777", Qty: 1}})
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"quote", `{"items":[{"sku":"SKU-0001","qty":2},{"sku":"SKU-0777","qty":1}]}`, 200, ""},
		{"empty", `{"items":[]}`, 200, ""},
		{"unknown sku", `{"items":[{"sku":"SKU-9999","qty":1}]}`, 400, "unknown_sku"},
		{"qty 0", `{"items":[{"sku":"SKU-0001","qty":0}]}`, 400, "qty_out_of_range"},
		{"qty 100", `{"items":[{"sku":"SKU-0001","qty":100}]}`, 400, "qty_out_of_range"},
		{"bad json", `{"items":`, 400, "bad_json"},
		{"unknown field", `{"lines":[]}`, 400, "bad_json"},
		{"too many", `{"items":[` + strings.Repeat(`{"sku":"SKU-0001","qty":1},`, MaxLines) + `{"sku":"SKU-0001","qty":1}]}`, 400, "too_many_items"},
		{"too large", `{"items":[],"x":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := post(t, ts.URL+"/api/quote", tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if h.Get("X-Served-By") != "p1" {
				t.Errorf("X-Served-By %q, want p1", h.Get("X-Served-By"))
			}
			if tt.code != "" {
				var eb httpapi.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != tt.code {
					t.Errorf("error %s, want code %s", body, tt.code)
				}
				return
			}
			var q Quote
			if err := json.Unmarshal(body, &q); err != nil {
				t.Fatal(err)
			}
			if tt.name == "quote" && (q.TotalCents != want.TotalCents || len(q.Items) != 2 || q.Items[1].Name != want.Items[1].Name) {
				t.Errorf("quote %+v, want %+v", q, want)
			}
		})
	}
}

func TestOperationalEndpoints(t *testing.T) {
	srv, ts := newTestServer(t, "p1")
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, _ := get("/healthz"); s != 200 {
		t.Errorf("healthz %d", s)
	}
	if s, _ := get("/readyz"); s != 200 {
		t.Errorf("readyz %d", s)
	}
	post(t, ts.URL+"/api/quote", `{"items":[]}`)
	if s, body := get("/metrics"); s != 200 || !strings.Contains(body, `statelab_pricing_requests_total{code="200",route="quote"} 1`) {
		t.Errorf("metrics %d: quote not counted:\n%s", s, body)
	}
	if s, body := get("/api/quote"); s != http.StatusMethodNotAllowed || !strings.Contains(body, "method_not_allowed") {
		t.Errorf("GET /api/quote: %d %s", s, body)
	}
	if s, body := get("/nope"); s != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("/nope: %d %s", s, body)
	}
	srv.Drain()
	if s, _ := get("/readyz"); s != 503 {
		t.Errorf("readyz after Drain: %d, want 503", s)
	}
	if s, _, _ := post(t, ts.URL+"/api/quote", `{"items":[]}`); s != 200 {
		t.Errorf("quote while draining: %d, want 200 (draining still serves)", s)
	}
}

// deadURL returns the URL of a port nobody listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

func TestClientRetriesOnTheNextReplica(t *testing.T) {
	_, good := newTestServer(t, "good")
	overloaded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, &httpapi.Error{Status: 503, Code: "overloaded", Message: "busy"})
	}))
	t.Cleanup(overloaded.Close)
	lines := []Line{{SKU: "SKU-0003", Qty: 4}}
	want := Price(catalog.New(), lines)
	for _, urls := range [][]string{{deadURL(t), good.URL}, {overloaded.URL, good.URL}} {
		c, err := NewClient(httpapi.ClientConfig{URLs: urls})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 { // every call, whichever replica it starts on
			q, err := c.Quote(context.Background(), lines)
			if err != nil || q.TotalCents != want.TotalCents {
				t.Fatalf("Quote via %v = %+v, %v; want %d", urls, q, err, want.TotalCents)
			}
		}
	}
}

func TestClientErrors(t *testing.T) {
	_, good := newTestServer(t, "good")
	c, err := NewClient(httpapi.ClientConfig{URLs: []string{good.URL}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Quote(context.Background(), []Line{{SKU: "nope", Qty: 1}})
	var ae *httpapi.Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "unknown_sku" {
		t.Errorf("bad input: %v, want the service's 400 unknown_sku", err)
	}
	down, err := NewClient(httpapi.ClientConfig{URLs: []string{deadURL(t), deadURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.Quote(context.Background(), nil); !errors.Is(err, httpapi.ErrUnavailable) {
		t.Errorf("all replicas down: %v, want ErrUnavailable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Quote(ctx, nil); !errors.Is(err, context.Canceled) || errors.Is(err, httpapi.ErrUnavailable) {
		t.Errorf("cancelled: %v, want context.Canceled only", err)
	}
	for _, u := range []string{"", "ftp://x", "http://", "not a url"} {
		if _, err := NewClient(httpapi.ClientConfig{URLs: []string{u}}); err == nil {
			t.Errorf("NewClient(%q) accepted", u)
		}
	}
}
