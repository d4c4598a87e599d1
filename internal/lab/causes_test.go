package lab

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAnswerCause(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{503, `{"error":{"code":"store_unavailable","message":"the session store is unavailable"}}`, "503 store_unavailable"},
		{502, `{"error":{"code":"bad_gateway","message":"x"}}` + "\n", "502 bad_gateway"},
		{500, "internal error", "500"},
		{429, `{"error":{}}`, "429"},
		{503, `{"error":{"code":"` + strings.Repeat("x", 40) + `"}}`, "503 " + strings.Repeat("x", 40)},
		{503, `{"error":{"code":"` + strings.Repeat("x", 41) + `"}}`, "503"}, // a code that long is not ours: keep the causes few
		{0, "", "no answer"},
	}
	for _, tt := range tests {
		if got := answerCause(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("answerCause(%d, %q) = %q, want %q", tt.status, tt.body, got, tt.want)
		}
	}
}

// TestTransportCause makes the failures a shopper meets for real: a port
// nobody listens on, a server that closes without answering, a server
// slower than the timeout.
func TestTransportCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	defer hangup.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)

	tests := []struct{ url, want string }{
		{refused, "no answer: connection refused"},
		{hangup.URL, "no answer: connection closed"},
		{slow.URL, "no answer: timeout"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tt.url, nil)
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: answered %d", tt.url, resp.StatusCode)
		}
		if got := transportCause(err); got != tt.want {
			t.Errorf("%s: transportCause(%v) = %q, want %q", tt.url, err, got, tt.want)
		}
	}
}

func TestCausesText(t *testing.T) {
	causes := countCauses([]sample{
		{err: true, cause: "503 no_backend"}, {err: true, cause: "503 no_backend"}, {},
		{err: true, cause: "no answer: timeout"}, {err: true}, {err: true, cause: "502"},
	})
	if got, want := causesText(causes, 2), "503 no_backend 2, 502 1, +2 more"; got != want {
		t.Errorf("causesText = %q, want %q", got, want)
	}
	if got, want := causesText(causes, 9), "503 no_backend 2, 502 1, no answer: timeout 1, unknown 1"; got != want {
		t.Errorf("causesText = %q, want %q", got, want)
	}
	if countCauses([]sample{{}, {}}) != nil || causesText(nil, 3) != "" {
		t.Error("no errors must give no causes")
	}
}
