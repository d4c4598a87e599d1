package cluster

import (
	"errors"
	"time"
)

// ErrCrashed is wrapped by Close's error when a child process exited without
// being asked to.
var ErrCrashed = errors.New("cluster: child process crashed")

// EventKind classifies an Event.
type EventKind string

// The kinds of events a cluster records.
const (
	EventStarted   EventKind = "started"    // the cluster is up
	EventKill      EventKind = "kill"       // a replica was sent SIGKILL
	EventPause     EventKind = "pause"      // a replica was sent SIGSTOP
	EventResume    EventKind = "resume"     // a replica was sent SIGCONT
	EventRestart   EventKind = "restart"    // a replica was (re)started
	EventAdd       EventKind = "add"        // a replica joined the balancer
	EventRemove    EventKind = "remove"     // a replica was drained and stopped
	EventStoreDown EventKind = "store_down" // the store was stopped
	EventStoreUp   EventKind = "store_up"   // the store was started again
	EventCrash     EventKind = "crash"      // a child exited on its own
	EventLink      EventKind = "link"       // a link was slowed, made flaky, cut or healed
)

// Event is one thing that happened to the cluster, in plain words.
type Event struct {
	// Seq numbers events from 1, in order.
	Seq int `json:"seq"`
	// Time is when it happened (with a monotonic reading).
	Time time.Time `json:"time"`
	// Kind classifies it.
	Kind EventKind `json:"kind"`
	// Replica is the replica concerned, if any.
	Replica string `json:"replica,omitempty"`
	// Message says what happened, for people.
	Message string `json:"message"`
}

// eventLog keeps the last maxEvents events. Guarded by Cluster.mu.
type eventLog struct {
	seq    int
	events []Event
}

const maxEvents = 1000

func (l *eventLog) add(e Event) Event {
	l.seq++
	e.Seq = l.seq
	l.events = append(l.events, e)
	if len(l.events) > maxEvents {
		l.events = append([]Event(nil), l.events[len(l.events)-maxEvents:]...)
	}
	return e
}

func (l *eventLog) last() int { return l.seq }

// event records an event and logs it.
func (c *Cluster) event(kind EventKind, replicaID, msg string) {
	c.mu.Lock()
	e := c.events.add(Event{Time: time.Now(), Kind: kind, Replica: replicaID, Message: msg})
	c.mu.Unlock()
	if kind == EventCrash {
		c.log.Error(msg, "event", string(kind), "replica", replicaID)
		return
	}
	c.log.Info(e.Message, "event", string(kind), "replica", replicaID)
}

// Events returns the events with a sequence number greater than since, oldest
// first (at most the last 1000 are kept). Pass 0 for all of them, then the
// last Seq seen to poll for new ones.
func (c *Cluster) Events(since int) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Event
	for _, e := range c.events.events {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	return out
}

// Crashes returns the crash events: children that exited without being asked.
func (c *Cluster) Crashes() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Event
	for _, e := range c.events.events {
		if e.Kind == EventCrash {
			out = append(out, e)
		}
	}
	return out
}
