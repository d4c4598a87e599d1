package game

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/statelab/statelab/internal/httpapi"
)

// Message is what the server sends on a room's WebSocket: an Ack, an Error
// for one input, or a Snapshot (on connect and after every tick that
// applied inputs, owned strategies only).
type Message struct {
	// Type is "ack", "error" or "snapshot".
	Type     string       `json:"type"`
	Ack      *Ack         `json:"ack,omitempty"`
	Error    *ErrorDetail `json:"error,omitempty"`
	Player   string       `json:"player,omitempty"` // of the refused input (error)
	Seq      uint64       `json:"seq,omitempty"`    // of the refused input (error)
	Snapshot *Snapshot    `json:"snapshot,omitempty"`
}

// wsWriteTimeout bounds every WebSocket write: a client that does not read
// is disconnected rather than holding the room's snapshots.
const wsWriteTimeout = 5 * time.Second

// maxWSQueue bounds the inputs of one connection waiting for their tick.
const maxWSQueue = 256

// handleWS serves GET /rooms/{id}/ws: players send Inputs as JSON text
// messages and receive Messages. The connection closes with status 1012
// (service restart) when this replica stops owning the room: reconnect
// (through the balancer) to reach the new owner.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	id, local := s.localRoom(w, r)
	if !local {
		return
	}
	rm, snap, err := s.roomSnapshot(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{"localhost:*", "127.0.0.1:*"}})
	if err != nil {
		return // Accept answered the request
	}
	defer c.CloseNow()
	c.SetReadLimit(httpapi.MaxBodyBytes)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if err := send(ctx, c, Message{Type: "snapshot", Snapshot: &snap}); err != nil {
		return
	}
	if rm == nil {
		s.serveExternalWS(ctx, c, id)
		return
	}
	s.serveRoomWS(ctx, cancel, c, rm)
}

// send writes m to c within wsWriteTimeout.
func send(ctx context.Context, c *websocket.Conn, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
	defer cancel()
	return wsjson.Write(ctx, c, m)
}

// errorMessage is the Message refusing in with err.
func errorMessage(in Input, err error) Message {
	e := classify(err)
	return Message{Type: "error", Player: in.Player, Seq: in.Seq, Error: &ErrorDetail{e.Code, e.Message}}
}

// readInput reads one Input from c; a message that is not one is answered
// with an error message and skipped.
func readInput(ctx context.Context, c *websocket.Conn) (Input, error, error) {
	_, data, err := c.Read(ctx)
	if err != nil {
		return Input{}, nil, err
	}
	var in Input
	if err := json.Unmarshal(data, &in); err != nil {
		return in, apiErr(http.StatusBadRequest, "bad_json", "message is not a JSON input: "+err.Error()), nil
	}
	return in, in.Validate(), nil
}

// serveExternalWS serves an external-strategy connection: each input is a
// store transaction answered in order.
func (s *Server) serveExternalWS(ctx context.Context, c *websocket.Conn, roomID string) {
	for {
		in, bad, err := readInput(ctx, c)
		if err != nil {
			return
		}
		m := errorMessage(in, bad)
		if bad == nil {
			ack, err := s.externalInput(ctx, roomID, in)
			if m = errorMessage(in, err); err == nil {
				m = Message{Type: "ack", Ack: &ack}
			}
		}
		if err := send(ctx, c, m); err != nil {
			return
		}
	}
}

// wsInput is an input of a connection on its way to a tick.
type wsInput struct {
	in    Input
	reply <-chan outcome // nil when refused before queueing
	err   error
}

// serveRoomWS serves an owned room's connection: a reader queues inputs
// for the room's ticks in arrival order; this loop answers them in the
// same order and forwards the room's snapshots.
func (s *Server) serveRoomWS(ctx context.Context, cancel context.CancelFunc, c *websocket.Conn, rm *room) {
	snaps, unsubscribe, err := rm.subscribe()
	if err != nil {
		c.Close(websocket.StatusServiceRestart, "room moved")
		return
	}
	defer unsubscribe()
	queue := make(chan wsInput, maxWSQueue)
	go func() {
		defer cancel()
		for {
			in, bad, err := readInput(ctx, c)
			if err != nil {
				return
			}
			q := wsInput{in: in, err: bad}
			if bad == nil {
				q.reply, q.err = rm.enqueue(in)
			}
			select {
			case queue <- q:
			case <-ctx.Done():
				return
			}
		}
	}()
	var head *wsInput
	for {
		var replies <-chan outcome
		next := queue
		if head != nil {
			replies, next = head.reply, nil
		}
		var m Message
		select {
		case <-ctx.Done():
			return
		case snap, ok := <-snaps:
			if !ok {
				c.Close(websocket.StatusServiceRestart, "room moved; reconnect")
				return
			}
			m = Message{Type: "snapshot", Snapshot: &snap}
		case q := <-next:
			if q.reply != nil {
				head = &q
				continue
			}
			m = errorMessage(q.in, q.err)
		case o := <-replies:
			m = Message{Type: "ack", Ack: &o.ack}
			if o.err != nil {
				m = errorMessage(head.in, o.err)
			}
			head = nil
		}
		if err := send(ctx, c, m); err != nil {
			return
		}
	}
}
