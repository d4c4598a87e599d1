package game

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Replication travels in batches: every room of an owner that has a tick
// for the same backup hands it to that backup's stream, which sends
// whatever is queued in one request and gives each room its own result.
// A room waits for its result before its next tick, so one room's
// messages never overtake each other.

const (
	// maxReplBatch bounds the messages of one request.
	maxReplBatch = 256
	// maxReplBatchBytes bounds the body a backup reads.
	maxReplBatchBytes = 16 << 20
)

// replBatch is the body of POST /internal/replica.
type replBatch struct {
	Messages []replicaMsg `json:"messages"`
}

// replResults answers a replBatch: per message, true when applied, false
// when the backup needs the full state.
type replResults struct {
	Results []bool `json:"results"`
}

// streamItem is one room's message waiting in a stream.
type streamItem struct {
	m    replicaMsg
	done chan error // buffered: the stream never blocks on it
}

// stream sends the ticks of this replica's rooms to one backup.
type stream struct {
	rs    *replicaSet
	addr  string
	items chan streamItem
}

// streamTo returns the stream to the backup at addr, starting it.
func (rs *replicaSet) streamTo(addr string) (*stream, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return nil, fmt.Errorf("%w: replica closing", ErrNotReplicated)
	}
	st := rs.streams[addr]
	if st == nil {
		st = &stream{rs: rs, addr: addr, items: make(chan streamItem, 4*maxReplBatch)}
		rs.streams[addr] = st
		go st.run()
	}
	return st, nil
}

// close stops the streams.
func (rs *replicaSet) close() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !rs.closed {
		rs.closed = true
		close(rs.quit)
	}
}

// send hands m to the stream of the backup at addr and waits for its
// result; errNeedFull means the backup asked for the full state.
func (rs *replicaSet) send(ctx context.Context, addr string, m replicaMsg) error {
	st, err := rs.streamTo(addr)
	if err != nil {
		return err
	}
	it := streamItem{m: m, done: make(chan error, 1)}
	select {
	case st.items <- it:
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrNotReplicated, ctx.Err())
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrNotReplicated, ctx.Err())
	}
}

// run sends batches until the replica closes.
func (st *stream) run() {
	for {
		var batch []streamItem
		select {
		case <-st.rs.quit:
			return
		case it := <-st.items:
			batch = append(batch, it)
		}
	drain:
		for len(batch) < maxReplBatch {
			select {
			case it := <-st.items:
				batch = append(batch, it)
			default:
				break drain
			}
		}
		st.flush(batch)
	}
}

// flush sends one batch and answers each of its items.
func (st *stream) flush(batch []streamItem) {
	results, n, err := st.post(batch)
	m := st.rs.metrics
	for i, it := range batch {
		switch {
		case err != nil:
			m.replication.WithLabelValues("error").Inc()
			it.done <- err
		case results[i]:
			m.replication.WithLabelValues("ok").Inc()
			it.done <- nil
		default:
			m.replication.WithLabelValues("need_full").Inc()
			it.done <- errNeedFull
		}
	}
	if err == nil {
		m.replicatedBytes.Add(float64(n))
	}
}

// post sends the batch and returns the backup's results and the bytes
// sent.
func (st *stream) post(batch []streamItem) ([]bool, int, error) {
	b := replBatch{Messages: make([]replicaMsg, len(batch))}
	for i, it := range batch {
		b.Messages[i] = it.m
	}
	body, err := json.Marshal(b)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.rs.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+st.addr+replicationPath, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set(replicationKeyHeader, st.rs.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := st.rs.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrNotReplicated, err)
	}
	defer res.Body.Close()
	var out replResults
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, res.Body)
		return nil, 0, fmt.Errorf("%w: backup answered %d", ErrNotReplicated, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Results) != len(batch) {
		return nil, 0, fmt.Errorf("%w: bad answer from the backup: %v", ErrNotReplicated, err)
	}
	return out.Results, len(body), nil
}
