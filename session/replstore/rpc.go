package replstore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/statelab/statelab/session"
)

// The replication RPC: JSON over HTTP/1.1 keep-alive connections between
// replicas. Every request carries its sender, a timestamp and an HMAC-SHA-256
// of both and the body; every response carries an HMAC binding its body to the
// request's, so neither can be forged or swapped without the cluster secret.
const (
	pathWrite     = "/replstore/v1/write"
	pathReplicate = "/replstore/v1/replicate"
	pathGet       = "/replstore/v1/get"
	pathMerge     = "/replstore/v1/merge"

	headerFrom = "X-Replstore-From"
	headerTime = "X-Replstore-Time"
	headerMAC  = "X-Replstore-Mac"

	// maxRPCBody bounds a request or response body (a merge batch of
	// mergeBatch records).
	maxRPCBody = 64 << 20
	// maxClockSkew is how far a request's timestamp may be from the
	// receiver's clock; older requests are refused as replays.
	maxClockSkew = time.Minute
	// maxHops bounds how often a write is forwarded between replicas that
	// disagree on its primary.
	maxHops = 2
)

// wireEntry is an entry on the wire. Times are Unix nanoseconds, 0 for the
// zero time.
type wireEntry struct {
	Data      []byte `json:"d,omitempty"`
	Version   uint64 `json:"v"`
	Idle      int64  `json:"i"`
	Absolute  int64  `json:"a,omitempty"`
	Deleted   bool   `json:"x,omitempty"`
	DeletedAt int64  `json:"xt,omitempty"`
}

func toWire(e entry) wireEntry {
	return wireEntry{
		Data:      e.Rec.Data,
		Version:   e.Rec.Version,
		Idle:      unixNano(e.Rec.IdleExpiry),
		Absolute:  unixNano(e.Rec.AbsoluteExpiry),
		Deleted:   e.Deleted,
		DeletedAt: unixNano(e.DeletedAt),
	}
}

func (w wireEntry) entry() entry {
	return entry{
		Rec: session.Record{
			Data:           w.Data,
			Version:        w.Version,
			IdleExpiry:     fromUnixNano(w.Idle),
			AbsoluteExpiry: fromUnixNano(w.Absolute),
		},
		Deleted:   w.Deleted,
		DeletedAt: fromUnixNano(w.DeletedAt),
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Operations a write request carries.
const (
	opPut    = "put"
	opTouch  = "touch"
	opDelete = "delete"
)

type writeRequest struct {
	Op    string    `json:"op"`
	Key   string    `json:"key"`
	Entry wireEntry `json:"e"`
	Hops  int       `json:"hops"`
}

type writeResponse struct {
	Version uint64 `json:"v"`
	Error   string `json:"err,omitempty"`
	Message string `json:"msg,omitempty"`
}

type replicateRequest struct {
	Key   string    `json:"key"`
	Prev  uint64    `json:"prev"`
	Entry wireEntry `json:"e"`
}

type replicateResponse struct {
	OK      bool      `json:"ok"`
	Current wireEntry `json:"cur"`
}

type getRequest struct {
	Key string `json:"key"`
}

type getResponse struct {
	Held  bool      `json:"held"`
	Entry wireEntry `json:"e"`
}

type mergeItem struct {
	Key   string    `json:"key"`
	Entry wireEntry `json:"e"`
}

type mergeRequest struct {
	Items []mergeItem `json:"items"`
}

type mergeResponse struct {
	Merged int `json:"merged"`
}

// Error codes carried by writeResponse.Error, mapped to and from sentinels.
var errorCodes = []struct {
	code string
	err  error
}{
	{"conflict", session.ErrConflict},
	{"not_found", session.ErrNotFound},
	{"invalid_key", ErrInvalidKey},
	{"unavailable", session.ErrUnavailable},
}

func errorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

func codeError(code, msg string) error {
	for _, c := range errorCodes {
		if c.code == code {
			return fmt.Errorf("%w (remote: %s)", c.err, msg)
		}
	}
	return fmt.Errorf("replstore: remote error: %s", msg)
}

// rpcMAC authenticates a request: path, sender, timestamp and body.
func rpcMAC(key []byte, path, from, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, s := range []string{"request", path, from, ts} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	m.Write(body)
	return m.Sum(nil)
}

// responseMAC authenticates a response body as the answer to the request
// whose MAC is reqMAC.
func responseMAC(key, reqMAC, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("response\x00"))
	m.Write(reqMAC)
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)
}

// rpcClient calls peers' RPC servers.
type rpcClient struct {
	from    string
	key     []byte
	timeout time.Duration
	http    *http.Client
}

func newRPCClient(from string, key []byte, timeout time.Duration) *rpcClient {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		DisableCompression:    true,
	}
	return &rpcClient{from: from, key: key, timeout: timeout, http: &http.Client{Transport: tr}}
}

// call posts req to path on the peer at addr and decodes the answer into
// resp. Transport failures wrap session.ErrUnavailable; a done ctx returns an
// error wrapping ctx.Err().
func (c *rpcClient) call(ctx context.Context, addr, path string, req, resp any) error {
	return c.callTimeout(ctx, c.timeout, addr, path, req, resp)
}

// callTimeout is call with the given bound instead of the client's.
func (c *rpcClient) callTimeout(ctx context.Context, timeout time.Duration, addr, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("replstore: encode %s: %w", path, err)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("replstore: %s to %s: %w: %w", path, addr, session.ErrUnavailable, err)
	}
	ts := strconv.FormatInt(time.Now().UnixNano(), 10)
	mac := rpcMAC(c.key, path, c.from, ts, body)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set(headerFrom, c.from)
	hreq.Header.Set(headerTime, ts)
	hreq.Header.Set(headerMAC, base64.RawStdEncoding.EncodeToString(mac))
	hresp, err := c.http.Do(hreq)
	if err != nil {
		if errors.Is(parent.Err(), context.Canceled) {
			return fmt.Errorf("replstore: %s to %s: %w", path, addr, parent.Err())
		}
		return fmt.Errorf("replstore: %s to %s: %w: %w", path, addr, session.ErrUnavailable, err)
	}
	defer hresp.Body.Close()
	rbody, err := io.ReadAll(io.LimitReader(hresp.Body, maxRPCBody))
	if err != nil {
		return fmt.Errorf("replstore: %s to %s: read response: %w: %w", path, addr, session.ErrUnavailable, err)
	}
	if hresp.StatusCode != http.StatusOK {
		return fmt.Errorf("replstore: %s to %s: status %d: %s: %w", path, addr, hresp.StatusCode, bytes.TrimSpace(rbody), session.ErrUnavailable)
	}
	got, err := base64.RawStdEncoding.DecodeString(hresp.Header.Get(headerMAC))
	if err != nil || !hmac.Equal(got, responseMAC(c.key, mac, rbody)) {
		return fmt.Errorf("replstore: %s to %s: response not authenticated (different secret?): %w", path, addr, session.ErrUnavailable)
	}
	if err := json.Unmarshal(rbody, resp); err != nil {
		return fmt.Errorf("replstore: %s to %s: decode response: %w: %w", path, addr, session.ErrUnavailable, err)
	}
	return nil
}

// rpcHandler serves the replication RPC for s.
func (s *Store) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathWrite, rpcEndpoint(s, func(ctx context.Context, req *writeRequest) (writeResponse, error) {
		v, err := s.write(ctx, req.Op, req.Key, req.Entry.entry().Rec, req.Hops)
		if err != nil {
			return writeResponse{Error: errorCode(err), Message: err.Error()}, nil
		}
		return writeResponse{Version: v}, nil
	}))
	mux.HandleFunc("POST "+pathReplicate, rpcEndpoint(s, func(ctx context.Context, req *replicateRequest) (replicateResponse, error) {
		cur, ok := s.tab.replicate(req.Key, req.Prev, req.Entry.entry(), time.Now())
		return replicateResponse{OK: ok, Current: toWire(cur)}, nil
	}))
	mux.HandleFunc("POST "+pathGet, rpcEndpoint(s, func(ctx context.Context, req *getRequest) (getResponse, error) {
		e, ok := s.tab.get(req.Key)
		return getResponse{Held: ok, Entry: toWire(e)}, nil
	}))
	mux.HandleFunc("POST "+pathMerge, rpcEndpoint(s, func(ctx context.Context, req *mergeRequest) (mergeResponse, error) {
		now := time.Now()
		n := 0
		for _, it := range req.Items {
			if validKey(it.Key) != nil {
				continue
			}
			if s.tab.merge(it.Key, it.Entry.entry(), now) {
				n++
			}
		}
		return mergeResponse{Merged: n}, nil
	}))
	return mux
}

// rpcEndpoint adapts a typed RPC function to an authenticated HTTP handler.
func rpcEndpoint[Req, Resp any](s *Store, fn func(context.Context, *Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRPCBody))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		from, ts := r.Header.Get(headerFrom), r.Header.Get(headerTime)
		mac, err := base64.RawStdEncoding.DecodeString(r.Header.Get(headerMAC))
		if err != nil || !hmac.Equal(mac, rpcMAC(s.rpcKey, r.URL.Path, from, ts, body)) {
			s.log.Warn("replstore: refused unauthenticated RPC", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "unauthenticated", http.StatusForbidden)
			return
		}
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(0, n)).Abs() > maxClockSkew {
			http.Error(w, "stale request", http.StatusForbidden)
			return
		}
		if s.closed.Load() {
			http.Error(w, "closed", http.StatusServiceUnavailable)
			return
		}
		var req Req
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		resp, err := fn(r.Context(), &req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out, err := json.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(headerMAC, base64.RawStdEncoding.EncodeToString(responseMAC(s.rpcKey, mac, out)))
		w.Write(out)
	}
}
