package play

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
)

// hub fans Server-Sent Events out to every connected dashboard. A
// subscriber that falls behind is disconnected rather than allowed to block
// the others; its browser's EventSource reconnects and receives a fresh
// state and the log backlog.
type hub struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
}

// subscriberBuffer is how many messages a slow dashboard may fall behind
// before it is disconnected.
const subscriberBuffer = 64

func newHub() *hub { return &hub{subs: map[chan []byte]struct{}{}} }

// subscribe returns a channel of encoded events; it is closed when the hub
// drops the subscriber.
func (h *hub) subscribe() chan []byte {
	ch := make(chan []byte, subscriberBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

// unsubscribe removes ch; it is safe to call after the hub dropped it.
func (h *hub) unsubscribe(ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// publish sends msg to every subscriber without blocking.
func (h *hub) publish(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- msg:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// subscribers returns how many dashboards are connected.
func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// encodeSSE encodes v as JSON in one Server-Sent Event named name.
func encodeSSE(name string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("play: encode %s event: %w", name, err)
	}
	var b bytes.Buffer
	// JSON from encoding/json has no raw newlines, so one data line holds it.
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", name, data)
	return b.Bytes(), nil
}
