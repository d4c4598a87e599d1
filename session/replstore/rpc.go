package replstore

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/statelab/statelab/session"
)

// The replication RPC: binary frames multiplexed over one TCP connection per
// pair of replicas, each request tagged with an id its response carries.
//
// A connection starts with a mutual challenge: the client sends a magic
// string and a random nonce, the server answers with its own nonce and an
// HMAC of both under the cluster's RPC key, and the client answers with its
// HMAC of both. Each side thereby proves it holds the key without sending it.
// Every frame then carries a truncated HMAC, under a key derived from the RPC
// key and both nonces, of its direction, id, kind and payload; request ids
// must increase, so frames can be neither forged, altered, replayed nor
// moved to another connection.
//
// Frame: uint32 length of the rest | uint64 id | byte kind | payload | MAC.
const (
	handshakeMagic = "statelab-replstore/1"
	nonceSize      = 16
	macSize        = 16
	frameHeader    = 4 + 8 + 1
	// maxFrame bounds a frame (a merge batch of mergeBatch records).
	maxFrame = 256 << 20
	// handshakeTimeout bounds the challenge at connection start.
	handshakeTimeout = 5 * time.Second
	// maxHops bounds how often a write is forwarded between replicas that
	// disagree on its primary.
	maxHops = 2
)

// errUnauthenticated is wrapped when a peer fails the challenge or sends a
// frame with a bad MAC.
var errUnauthenticated = errors.New("replstore: peer not authenticated (different secret?)")

// errNoEffect is wrapped by a call's error when the peer certainly did not
// act on the request: it did not reach the peer whole (no connection could
// be made, the connection was already broken, the frame could not be
// written), or the peer answered that it refused it. Any other failed call
// may have taken effect.
var errNoEffect = errors.New("replstore: request had no effect")

// noEffect reports whether err is a call error whose request the peer
// certainly did not act on.
func noEffect(err error) bool { return errors.Is(err, errNoEffect) }

// challengeMAC is side's proof of the key for the nonce pair.
func challengeMAC(key []byte, side string, nc, ns []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(side))
	m.Write(nc)
	m.Write(ns)
	return m.Sum(nil)
}

// framer computes frame MACs under a connection's session key. It reuses
// one HMAC state, so each framer belongs to one goroutine (or one lock).
type framer struct {
	mac hash.Hash
	sum []byte
}

func newFramer(skey []byte) *framer {
	return &framer{mac: hmac.New(sha256.New, skey), sum: make([]byte, 0, sha256.Size)}
}

// frameMAC authenticates one frame: its direction, id, kind and payload.
func (f *framer) frameMAC(dir byte, hdr, payload []byte) []byte {
	f.mac.Reset()
	f.mac.Write([]byte{dir})
	f.mac.Write(hdr[4:frameHeader])
	f.mac.Write(payload)
	f.sum = f.mac.Sum(f.sum[:0])
	return f.sum[:macSize]
}

// Frame directions, bound into the MAC.
const (
	dirRequest  byte = 'q'
	dirResponse byte = 'r'
)

// appendFrame builds a frame.
func (f *framer) appendFrame(dir byte, id uint64, kind byte, payload []byte) []byte {
	buf := make([]byte, frameHeader, frameHeader+len(payload)+macSize)
	binary.BigEndian.PutUint32(buf, uint32(8+1+len(payload)+macSize))
	binary.BigEndian.PutUint64(buf[4:], id)
	buf[12] = kind
	buf = append(buf, payload...)
	return append(buf, f.frameMAC(dir, buf[:frameHeader], payload)...)
}

// readFrame reads and authenticates one frame.
func (f *framer) readFrame(r *bufio.Reader, dir byte) (id uint64, kind byte, payload []byte, err error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 8+1+macSize || n > maxFrame {
		return 0, 0, nil, fmt.Errorf("%w: frame length %d", errMalformed, n)
	}
	rest := make([]byte, n-8-1)
	if _, err := io.ReadFull(r, rest); err != nil {
		return 0, 0, nil, err
	}
	payload, mac := rest[:len(rest)-macSize], rest[len(rest)-macSize:]
	if !hmac.Equal(mac, f.frameMAC(dir, hdr[:], payload)) {
		return 0, 0, nil, errUnauthenticated
	}
	return binary.BigEndian.Uint64(hdr[4:]), hdr[12], payload, nil
}

// rpcClient calls peers' RPC servers over one multiplexed connection each.
type rpcClient struct {
	keys    [][]byte // keys[0] is this replica's; the others are accepted
	timeout time.Duration
	from    string    // this replica's name, for faults
	faults  *faultNet // a test's partition; nil drops nothing

	mu     sync.Mutex
	conns  map[string]*clientConn
	closed bool
}

func newRPCClient(keys [][]byte, timeout time.Duration, from string, faults *faultNet) *rpcClient {
	return &rpcClient{keys: keys, timeout: timeout, from: from, faults: faults, conns: make(map[string]*clientConn)}
}

// clientConn is one authenticated connection to a peer.
type clientConn struct {
	conn net.Conn

	wmu    sync.Mutex // serialises frame writes and id allocation
	wf     *framer    // under wmu
	nextID uint64

	mu      sync.Mutex
	pending map[uint64]chan rpcResult
	err     error // set once the connection broke
}

type rpcResult struct {
	kind    byte
	payload []byte
	err     error
}

// close closes every connection; later calls fail.
func (c *rpcClient) close() {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = map[string]*clientConn{}
	c.mu.Unlock()
	for _, cc := range conns {
		cc.fail(net.ErrClosed)
	}
}

// conn returns an open connection to addr, dialing one if needed.
func (c *rpcClient) conn(ctx context.Context, addr string) (*clientConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if cc := c.conns[addr]; cc != nil && cc.broken() == nil {
		c.mu.Unlock()
		return cc, nil
	}
	c.mu.Unlock()
	cc, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cc.fail(net.ErrClosed)
		return nil, ErrClosed
	}
	if old := c.conns[addr]; old != nil && old.broken() == nil {
		cc.fail(net.ErrClosed) // lost a race with another dialer
		return old, nil
	}
	c.conns[addr] = cc
	return cc, nil
}

// dial connects to addr and runs the client side of the challenge.
func (c *rpcClient) dial(ctx context.Context, addr string) (*clientConn, error) {
	d := net.Dialer{Timeout: c.timeout, KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(handshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	nc := make([]byte, nonceSize)
	rand.Read(nc)
	if _, err := conn.Write(append([]byte(handshakeMagic), nc...)); err != nil {
		conn.Close()
		return nil, err
	}
	r := bufio.NewReader(conn)
	resp := make([]byte, nonceSize+sha256.Size)
	if _, err := io.ReadFull(r, resp); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %w", errUnauthenticated, err)
	}
	ns := resp[:nonceSize]
	// The server proves its own key; answer with whichever of ours it is
	// (during a key rotation the peer may still use an old one).
	i := slices.IndexFunc(c.keys, func(k []byte) bool { return hmac.Equal(resp[nonceSize:], challengeMAC(k, "server", nc, ns)) })
	if i < 0 {
		conn.Close()
		return nil, errUnauthenticated
	}
	key := c.keys[i]
	if _, err := conn.Write(challengeMAC(key, "client", nc, ns)); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	skey := challengeMAC(key, "session", nc, ns)
	cc := &clientConn{
		conn:    conn,
		wf:      newFramer(skey),
		nextID:  1,
		pending: make(map[uint64]chan rpcResult),
	}
	go cc.readLoop(r, newFramer(skey))
	return cc, nil
}

func (cc *clientConn) broken() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

// fail marks the connection broken, closes it and fails every pending call.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	pending := cc.pending
	cc.pending = nil
	cc.mu.Unlock()
	cc.conn.Close()
	for _, ch := range pending {
		ch <- rpcResult{err: err}
	}
}

func (cc *clientConn) readLoop(r *bufio.Reader, f *framer) {
	for {
		id, kind, payload, err := f.readFrame(r, dirResponse)
		if err != nil {
			cc.fail(err)
			return
		}
		cc.mu.Lock()
		ch := cc.pending[id]
		delete(cc.pending, id)
		cc.mu.Unlock()
		if ch != nil {
			ch <- rpcResult{kind: kind, payload: payload}
		}
	}
}

// call sends a request of kind to the peer at addr and returns the response
// payload, bounded by the client's timeout and ctx. Transport failures wrap
// session.ErrUnavailable; a cancelled ctx returns an error wrapping
// context.Canceled.
func (c *rpcClient) call(ctx context.Context, addr string, kind byte, payload []byte) ([]byte, error) {
	return c.callTimeout(ctx, c.timeout, addr, kind, payload)
}

// callTimeout is call with the given bound instead of the client's. Large
// payloads get one more timeout per full MiB, so that a 1 MiB session on a
// busy machine is not mistaken for a dead peer. An error wraps errNoEffect
// when the peer certainly did not act on the request.
func (c *rpcClient) callTimeout(parent context.Context, timeout time.Duration, addr string, kind byte, payload []byte) ([]byte, error) {
	timeout += time.Duration(len(payload)>>20) * c.timeout
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	fail := func(err error) ([]byte, error) {
		if errors.Is(parent.Err(), context.Canceled) {
			return nil, fmt.Errorf("replstore: rpc to %s: %w", addr, parent.Err())
		}
		return nil, fmt.Errorf("replstore: rpc to %s: %w: %w", addr, session.ErrUnavailable, err)
	}
	failNoEffect := func(err error) ([]byte, error) {
		return fail(fmt.Errorf("%w: %w", errNoEffect, err))
	}
	if c.faults.dropped(c.from, addr) {
		// A test partition: the request is lost on the way, or its answer
		// is; the caller cannot tell which.
		<-ctx.Done()
		return fail(ctx.Err())
	}
	cc, err := c.conn(ctx, addr)
	if err != nil {
		return failNoEffect(err)
	}
	ch := make(chan rpcResult, 1)
	cc.wmu.Lock()
	id := cc.nextID
	cc.nextID++
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		cc.wmu.Unlock()
		return failNoEffect(err)
	}
	cc.pending[id] = ch
	cc.mu.Unlock()
	frame := cc.wf.appendFrame(dirRequest, id, kind, payload)
	dl, _ := ctx.Deadline()
	cc.conn.SetWriteDeadline(dl)
	n, err := cc.conn.Write(frame)
	cc.wmu.Unlock()
	if err != nil {
		cc.fail(err)
		if n < len(frame) {
			// The peer got at most part of the frame, and the connection
			// is closed: it cannot act on the request.
			return failNoEffect(err)
		}
		return fail(err)
	}
	select {
	case res := <-ch:
		switch {
		case res.err != nil:
			return fail(res.err)
		case res.kind == kindError:
			// The peer refused the request (it is closing, or could not
			// decode it) without acting on it.
			return failNoEffect(errors.New(string(res.payload)))
		case res.kind != kind:
			return fail(fmt.Errorf("%w: answer of kind %d to a request of kind %d", errMalformed, res.kind, kind))
		}
		return res.payload, nil
	case <-ctx.Done():
		cc.mu.Lock()
		if cc.pending != nil {
			delete(cc.pending, id)
		}
		cc.mu.Unlock()
		return fail(ctx.Err())
	}
}

// rpcServer serves the replication RPC for a Store.
type rpcServer struct {
	s  *Store
	ln net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // connections and in-flight requests
}

func newRPCServer(s *Store, ln net.Listener) *rpcServer {
	return &rpcServer{s: s, ln: ln, conns: make(map[net.Conn]struct{})}
}

// serve accepts connections until the listener closes.
func (srv *rpcServer) serve() {
	for {
		conn, err := srv.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				srv.s.log.Error("replstore: RPC accept failed", "err", err)
			}
			return
		}
		srv.mu.Lock()
		if srv.closed {
			srv.mu.Unlock()
			conn.Close()
			return
		}
		srv.conns[conn] = struct{}{}
		srv.wg.Add(1)
		srv.mu.Unlock()
		go srv.handle(conn)
	}
}

// close stops accepting, closes every connection (in-flight requests fail
// at their callers) and waits for the handlers.
func (srv *rpcServer) close() {
	srv.mu.Lock()
	srv.closed = true
	srv.ln.Close()
	for c := range srv.conns {
		c.Close()
	}
	srv.mu.Unlock()
	srv.wg.Wait()
}

func (srv *rpcServer) handle(conn net.Conn) {
	defer srv.wg.Done()
	defer func() {
		srv.mu.Lock()
		delete(srv.conns, conn)
		srv.mu.Unlock()
		conn.Close()
	}()
	r := bufio.NewReader(conn)
	skey, err := srv.handshake(conn, r)
	if err != nil {
		srv.s.log.Warn("replstore: refused RPC connection", "remote", conn.RemoteAddr().String(), "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rf := newFramer(skey)
	var wmu sync.Mutex // serialises response writes and wf
	wf := newFramer(skey)
	respond := func(id uint64, kind byte, payload []byte) {
		rkind, resp := srv.s.dispatch(ctx, kind, payload)
		wmu.Lock()
		frame := wf.appendFrame(dirResponse, id, rkind, resp)
		conn.SetWriteDeadline(time.Now().Add(srv.s.cfg.RPCTimeout))
		_, err := conn.Write(frame)
		wmu.Unlock()
		if err != nil {
			conn.Close()
		}
	}
	var last uint64
	for {
		id, kind, payload, err := rf.readFrame(r, dirRequest)
		if err != nil {
			if errors.Is(err, errUnauthenticated) || errors.Is(err, errMalformed) {
				srv.s.log.Warn("replstore: bad RPC frame; closing connection", "remote", conn.RemoteAddr().String(), "err", err)
			}
			return
		}
		if id <= last {
			srv.s.log.Warn("replstore: replayed RPC frame; closing connection", "remote", conn.RemoteAddr().String())
			return
		}
		last = id
		if kind != kindWrite {
			// Gets, replications and merges only touch local memory:
			// answer them in order, without a goroutine.
			respond(id, kind, payload)
			continue
		}
		// A forwarded write may wait for the key's lock and for backups.
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			respond(id, kind, payload)
		}()
	}
}

// handshake runs the server side of the challenge and returns the
// connection's session key.
func (srv *rpcServer) handshake(conn net.Conn, r *bufio.Reader) ([]byte, error) {
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	hello := make([]byte, len(handshakeMagic)+nonceSize)
	if _, err := io.ReadFull(r, hello); err != nil {
		return nil, err
	}
	if string(hello[:len(handshakeMagic)]) != handshakeMagic {
		return nil, fmt.Errorf("%w: not a replstore client", errUnauthenticated)
	}
	nc := hello[len(handshakeMagic):]
	ns := make([]byte, nonceSize)
	rand.Read(ns)
	key := srv.s.rpcKey
	if _, err := conn.Write(append(ns, challengeMAC(key, "server", nc, ns)...)); err != nil {
		return nil, err
	}
	proof := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, proof); err != nil {
		return nil, err
	}
	if !hmac.Equal(proof, challengeMAC(key, "client", nc, ns)) {
		return nil, errUnauthenticated
	}
	conn.SetDeadline(time.Time{})
	return challengeMAC(key, "session", nc, ns), nil
}
