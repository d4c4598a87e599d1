package replstore

import (
	"context"
	"fmt"
	"time"
)

// The Store's side of the RPC: typed calls to peers, and dispatch of their
// requests.

func (s *Store) rpcGet(ctx context.Context, addr, key string) (getResponse, error) {
	e := encoder{}
	e.str(key)
	var resp getResponse
	b, err := s.client.call(ctx, addr, kindGet, e.b)
	if err != nil {
		return resp, err
	}
	d := decoder{b: b}
	resp.decode(&d)
	return resp, d.done()
}

func (s *Store) rpcWrite(ctx context.Context, timeout time.Duration, addr string, req writeRequest) (writeResponse, error) {
	e := encoder{}
	req.encode(&e)
	var resp writeResponse
	b, err := s.client.callTimeout(ctx, timeout, addr, kindWrite, e.b)
	if err != nil {
		return resp, err
	}
	d := decoder{b: b}
	resp.decode(&d)
	return resp, d.done()
}

func (s *Store) rpcReplicate(ctx context.Context, addr string, req replicateRequest) (replicateResponse, error) {
	e := encoder{}
	req.encode(&e)
	var resp replicateResponse
	s.countReplicated(len(e.b))
	b, err := s.client.call(ctx, addr, kindReplicate, e.b)
	if err != nil {
		return resp, err
	}
	d := decoder{b: b}
	resp.decode(&d)
	return resp, d.done()
}

func (s *Store) rpcMerge(ctx context.Context, addr string, items []mergeItem) error {
	e := encoder{}
	encodeMerge(&e, items)
	b, err := s.client.call(ctx, addr, kindMerge, e.b)
	if err != nil {
		return err
	}
	d := decoder{b: b}
	d.uvarint()
	return d.done()
}

// dispatch serves one request from a peer and returns the response kind and
// payload.
func (s *Store) dispatch(ctx context.Context, kind byte, payload []byte) (byte, []byte) {
	if s.closed.Load() {
		return kindError, []byte(ErrClosed.Error())
	}
	d := decoder{b: payload}
	e := encoder{}
	switch kind {
	case kindWrite:
		var req writeRequest
		req.decode(&d)
		if err := d.done(); err != nil {
			break
		}
		var resp writeResponse
		v, err := s.write(ctx, req.Op, req.Key, req.Entry.Rec, int(req.Hops))
		if err != nil {
			resp = writeResponse{Code: errorCode(err), Message: err.Error()}
		} else {
			resp = writeResponse{Version: v}
		}
		resp.encode(&e)
		return kind, e.b
	case kindReplicate:
		var req replicateRequest
		req.decode(&d)
		if err := d.done(); err != nil {
			break
		}
		if err := validKey(req.Key); err != nil {
			return kindError, []byte(err.Error())
		}
		cur, ok := s.tab.replicate(req.Key, req.Prev, req.Entry, time.Now())
		replicateResponse{OK: ok, Current: cur}.encode(&e)
		return kind, e.b
	case kindGet:
		key := d.str()
		if err := d.done(); err != nil {
			break
		}
		cur, ok := s.tab.get(key)
		getResponse{Held: ok, Entry: cur}.encode(&e)
		return kind, e.b
	case kindMerge:
		items := decodeMerge(&d)
		if err := d.done(); err != nil {
			break
		}
		now := time.Now()
		n := 0
		for _, it := range items {
			if validKey(it.Key) == nil && s.tab.merge(it.Key, it.Entry, now) {
				n++
			}
		}
		e.uvarint(uint64(n))
		return kind, e.b
	default:
		return kindError, fmt.Appendf(nil, "unknown request kind %d", kind)
	}
	return kindError, []byte(d.err.Error())
}
