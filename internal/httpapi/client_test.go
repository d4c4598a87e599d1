package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// counting serves h and counts the requests it got.
func counting(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, &n
}

func TestClientAnswers(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	tests := []struct {
		name      string
		h         http.HandlerFunc
		wantHits  int64
		wantErr   func(error) bool
		wantValue int
	}{
		{"200 decodes", func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, map[string]int{"v": 7}) },
			1, func(err error) bool { return err == nil }, 7},
		{"4xx passes through, not retried", func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, &Error{Status: 400, Code: "unknown_sku", Message: "no"})
		}, 1, func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Status == 400 && e.Code == "unknown_sku"
		}, 0},
		{"500 is a 502, not retried", func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, &Error{Status: 500, Code: "internal", Message: "bug"})
		}, 1, func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Status == http.StatusBadGateway && !errors.Is(err, ErrUnavailable)
		}, 0},
		{"plain 404 gets a code", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			1, func(err error) bool {
				var e *Error
				return errors.As(err, &e) && e.Status == 404 && e.Code == "dependency_error"
			}, 0},
		{"503 retried, then unavailable", func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, &Error{Status: 503, Code: "overloaded", Message: "busy"})
		}, 3, func(err error) bool { return errors.Is(err, ErrUnavailable) }, 0},
		{"slow answers time out per attempt", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}, 3, func(err error) bool { return errors.Is(err, ErrUnavailable) }, 0},
		{"undecodable 200 retried", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{not json")) },
			3, func(err error) bool { return errors.Is(err, ErrUnavailable) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, hits := counting(t, tt.h)
			c, err := NewClient(ClientConfig{Service: "svc", URLs: []string{ts.URL}, Timeout: 200 * time.Millisecond, Attempts: 3})
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ V int }
			err = c.Call(context.Background(), http.MethodGet, "/x", nil, &out)
			if !tt.wantErr(err) || out.V != tt.wantValue {
				t.Errorf("Call = %v (value %d), want another answer", err, out.V)
			}
			if hits.Load() != tt.wantHits {
				t.Errorf("%d attempts reached the server, want %d", hits.Load(), tt.wantHits)
			}
		})
	}
}

func TestClientSpreadsOverItsURLs(t *testing.T) {
	a, na := counting(t, func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, nil) })
	b, nb := counting(t, func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, nil) })
	c, err := NewClient(ClientConfig{URLs: []string{a.URL, b.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := c.Call(context.Background(), http.MethodPost, "/q", map[string]int{"x": 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if na.Load() != 5 || nb.Load() != 5 {
		t.Errorf("calls a=%d b=%d, want 5 and 5", na.Load(), nb.Load())
	}
}
