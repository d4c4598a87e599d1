package play

import (
	"sync"
	"time"
)

// EventKind classifies a log line, so the dashboard can colour it.
type EventKind string

// The kinds of event the log holds.
const (
	// EventAction is something a person did: kill, pause, add, a new strategy.
	EventAction EventKind = "action"
	// EventLoss is a cart, or part of one, that vanished.
	EventLoss EventKind = "loss"
	// EventSafe is a failure that cost no cart.
	EventSafe EventKind = "safe"
	// EventError is a request or control that failed.
	EventError EventKind = "error"
	// EventInfo is anything else worth saying.
	EventInfo EventKind = "info"
)

// Event is one line of the playground's log, in plain words.
type Event struct {
	// Seq numbers events from 1 in the order they happened.
	Seq int64 `json:"seq"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Kind classifies it.
	Kind EventKind `json:"kind"`
	// Text says what happened, such as "r2 killed — 37 carts lived only
	// there".
	Text string `json:"text"`
}

// eventLog keeps the most recent events and hands each new one to a
// publish function.
type eventLog struct {
	mu      sync.Mutex
	seq     int64
	events  []Event
	max     int
	publish func(Event)
	now     func() time.Time
}

func newEventLog(max int, publish func(Event)) *eventLog {
	return &eventLog{max: max, publish: publish, now: time.Now}
}

// add records an event and publishes it.
func (l *eventLog) add(kind EventKind, text string) Event {
	l.mu.Lock()
	l.seq++
	e := Event{Seq: l.seq, Time: l.now().UTC(), Kind: kind, Text: text}
	l.events = append(l.events, e)
	if len(l.events) > l.max {
		l.events = append(l.events[:0:0], l.events[len(l.events)-l.max:]...)
	}
	l.mu.Unlock()
	if l.publish != nil {
		l.publish(e)
	}
	return e
}

// snapshot returns the recorded events, oldest first.
func (l *eventLog) snapshot() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}
