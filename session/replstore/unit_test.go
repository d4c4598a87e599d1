package replstore

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// TestOwners checks the rendezvous placement: owner-set sizes, determinism,
// and that adding a member keeps at least one old owner of every key.
func TestOwners(t *testing.T) {
	mk := func(n int) []node {
		var out []node
		for i := range n {
			out = append(out, node{Name: fmt.Sprintf("r%d", i)})
		}
		return out
	}
	tests := []struct {
		name    string
		members int
		backups int
		want    int
	}{
		{"one backup", 5, 1, 2},
		{"two backups", 5, 2, 3},
		{"all", 5, -1, 5},
		{"more backups than members", 2, 3, 2},
		{"alone", 1, 1, 1},
		{"nobody", 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := mk(tt.members)
			for i := range 200 {
				key := fmt.Sprintf("key-%d", i)
				got := owners(key, nodes, tt.backups)
				if len(got) != tt.want {
					t.Fatalf("owners(%s) has %d members, want %d", key, len(got), tt.want)
				}
				again := owners(key, slices.Clone(nodes), tt.backups)
				if !slices.Equal(got, again) {
					t.Fatalf("owners(%s) not deterministic: %v vs %v", key, got, again)
				}
			}
		})
	}

	old, grown := mk(4), mk(5)
	primaries := make(map[string]int)
	for i := range 2000 {
		key := fmt.Sprintf("key-%d", i)
		before, after := owners(key, old, 1), owners(key, grown, 1)
		if !slices.ContainsFunc(after, func(n node) bool { return slices.Contains(before, n) }) {
			t.Fatalf("key %s: owners %v after a join share nobody with %v before", key, after, before)
		}
		primaries[after[0].Name]++
	}
	for name, n := range primaries {
		if n < 2000/5/2 {
			t.Fatalf("member %s is primary of %d of 2000 keys; placement is badly skewed: %v", name, n, primaries)
		}
	}
}

// TestTableReplicate checks a backup's decision on a primary's write.
func TestTableReplicate(t *testing.T) {
	now := time.Now()
	live := func(v uint64) entry {
		return entry{Rec: session.Record{Data: []byte(fmt.Sprint(v)), Version: v, IdleExpiry: now.Add(time.Hour)}}
	}
	expired := entry{Rec: session.Record{Version: 7, IdleExpiry: now.Add(-time.Second)}}
	tests := []struct {
		name    string
		held    *entry
		prev    uint64
		next    entry
		wantOK  bool
		wantVer uint64
	}{
		{"new key", nil, 0, live(5), true, 5},
		{"next version", ptr(live(5)), 5, live(9), true, 9},
		{"backup behind", ptr(live(3)), 5, live(9), true, 9},
		{"same write again", ptr(live(9)), 5, live(9), true, 9},
		{"stale primary", ptr(live(12)), 5, live(9), false, 12},
		{"stale primary creating", ptr(live(12)), 0, live(20), false, 12},
		{"expired newer copy", &expired, 0, live(20), true, 20},
		{"tombstone newer than write", ptr(entry{Deleted: true, DeletedAt: now, Rec: session.Record{Version: 30}}), 0, live(20), false, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTable()
			if tt.held != nil {
				tab.set("k", *tt.held)
			}
			got, ok := tab.replicate("k", tt.prev, tt.next, now)
			if ok != tt.wantOK || got.Rec.Version != tt.wantVer {
				t.Fatalf("replicate = version %d, ok %v; want version %d, ok %v", got.Rec.Version, ok, tt.wantVer, tt.wantOK)
			}
			held, _ := tab.get("k")
			if held.Rec.Version != tt.wantVer {
				t.Fatalf("table holds version %d after replicate, want %d", held.Rec.Version, tt.wantVer)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestTableMerge checks that merging keeps the newest copy: higher
// version, then tombstone, then later idle expiry.
func TestTableMerge(t *testing.T) {
	now := time.Now()
	rec := func(v uint64, idle time.Duration) entry {
		return entry{Rec: session.Record{Version: v, IdleExpiry: now.Add(idle)}}
	}
	tomb := entry{Deleted: true, DeletedAt: now, Rec: session.Record{Version: 5}}
	tests := []struct {
		name      string
		held      *entry
		in        entry
		wantMerge bool
	}{
		{"into nothing", nil, rec(5, time.Hour), true},
		{"expired into nothing", nil, rec(5, -time.Hour), false},
		{"tombstone into nothing", nil, tomb, true},
		{"higher version", ptr(rec(5, time.Hour)), rec(6, time.Hour), true},
		{"lower version", ptr(rec(6, time.Hour)), rec(5, 2*time.Hour), false},
		{"same version, later expiry (touch)", ptr(rec(5, time.Hour)), rec(5, 2*time.Hour), true},
		{"same version, earlier expiry", ptr(rec(5, 2*time.Hour)), rec(5, time.Hour), false},
		{"tombstone over same version", ptr(rec(5, time.Hour)), tomb, true},
		{"record over newer tombstone", ptr(tomb), rec(4, time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTable()
			if tt.held != nil {
				tab.set("k", *tt.held)
			}
			if got := tab.merge("k", tt.in, now); got != tt.wantMerge {
				t.Fatalf("merge = %v, want %v", got, tt.wantMerge)
			}
		})
	}
}

// TestApply checks the primary's compare-and-swap decisions.
func TestApply(t *testing.T) {
	now := time.Now()
	live := entry{Rec: session.Record{Data: []byte("x"), Version: 10, IdleExpiry: now.Add(time.Hour)}}
	dead := entry{Rec: session.Record{Version: 10, IdleExpiry: now.Add(-time.Hour)}}
	tomb := entry{Deleted: true, DeletedAt: now, Rec: session.Record{Version: 10}}
	put := func(v uint64) session.Record {
		return session.Record{Data: []byte("new"), Version: v, IdleExpiry: now.Add(time.Hour)}
	}
	tests := []struct {
		name    string
		op      byte
		cur     *entry
		rec     session.Record
		wantErr error
		skip    bool
	}{
		{"create new", opPut, nil, put(0), nil, false},
		{"create over live", opPut, &live, put(0), session.ErrConflict, false},
		{"create over expired", opPut, &dead, put(0), nil, false},
		{"create over tombstone", opPut, &tomb, put(0), nil, false},
		{"update matching", opPut, &live, put(10), nil, false},
		{"update stale", opPut, &live, put(9), session.ErrConflict, false},
		{"update missing", opPut, nil, put(10), session.ErrConflict, false},
		{"update expired", opPut, &dead, put(10), session.ErrConflict, false},
		{"touch live", opTouch, &live, session.Record{IdleExpiry: now.Add(2 * time.Hour)}, nil, false},
		{"touch missing", opTouch, nil, session.Record{}, session.ErrNotFound, false},
		{"touch expired", opTouch, &dead, session.Record{}, session.ErrNotFound, false},
		{"delete live", opDelete, &live, session.Record{}, nil, false},
		{"delete missing", opDelete, nil, session.Record{}, nil, false},
		{"delete deleted", opDelete, &tomb, session.Record{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cur entry
			if tt.cur != nil {
				cur = *tt.cur
			}
			next, skip, err := apply(tt.op, cur, tt.cur != nil, tt.rec, now)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if skip != tt.skip || err != nil || skip {
				return
			}
			switch tt.op {
			case opPut, opDelete:
				if next.Rec.Version <= cur.Rec.Version {
					t.Fatalf("new version %d not above the held %d", next.Rec.Version, cur.Rec.Version)
				}
			case opTouch:
				if next.Rec.Version != cur.Rec.Version || !next.Rec.IdleExpiry.Equal(tt.rec.IdleExpiry) {
					t.Fatalf("touch gave %+v", next.Rec)
				}
			}
		})
	}
}

// TestWireRoundTrip checks that every message decodes to what was encoded,
// and that truncated messages are refused rather than misread.
func TestWireRoundTrip(t *testing.T) {
	now := time.Unix(0, time.Now().UnixNano())
	e := entry{Rec: session.Record{Data: []byte("payload"), Version: 42, IdleExpiry: now, AbsoluteExpiry: now.Add(time.Hour)}}
	tomb := entry{Deleted: true, DeletedAt: now, Rec: session.Record{Version: 43}}
	enc := func(f func(*encoder)) []byte { var x encoder; f(&x); return x.b }

	w := writeRequest{Op: opPut, Key: "abc", Entry: e, Hops: 1}
	b := enc(w.encode)
	var w2 writeRequest
	d := decoder{b: b}
	w2.decode(&d)
	if err := d.done(); err != nil || w2.Op != w.Op || w2.Key != w.Key || w2.Hops != w.Hops || !sameEntry(w2.Entry, w.Entry) {
		t.Fatalf("write request round trip: %+v, %v", w2, err)
	}
	for cut := range len(b) {
		var x writeRequest
		d := decoder{b: b[:cut]}
		x.decode(&d)
		if d.done() == nil {
			t.Fatalf("a write request cut to %d of %d bytes decoded without error", cut, len(b))
		}
	}

	items := []mergeItem{{"a", e}, {"b", tomb}}
	d = decoder{b: enc(func(x *encoder) { encodeMerge(x, items) })}
	got := decodeMerge(&d)
	if err := d.done(); err != nil || len(got) != 2 || !sameEntry(got[0].Entry, e) || !sameEntry(got[1].Entry, tomb) || got[1].Key != "b" {
		t.Fatalf("merge round trip: %+v, %v", got, err)
	}
	d = decoder{b: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}}
	if decodeMerge(&d); d.done() == nil {
		t.Fatal("a merge claiming 4G items decoded without error")
	}
}

func sameEntry(a, b entry) bool {
	return bytes.Equal(a.Rec.Data, b.Rec.Data) && a.Rec.Version == b.Rec.Version &&
		a.Rec.IdleExpiry.Equal(b.Rec.IdleExpiry) && a.Rec.AbsoluteExpiry.Equal(b.Rec.AbsoluteExpiry) &&
		a.Deleted == b.Deleted && a.DeletedAt.Equal(b.DeletedAt)
}

// FuzzDecode checks that no byte string makes a decoder panic.
func FuzzDecode(f *testing.F) {
	var e encoder
	writeRequest{Op: opPut, Key: "k", Entry: entry{Rec: session.Record{Data: []byte("d"), Version: 1}}}.encode(&e)
	f.Add(e.b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var w writeRequest
		d := decoder{b: b}
		w.decode(&d)
		_ = d.done()
		d = decoder{b: b}
		decodeMerge(&d)
		_ = d.done()
		var r replicateRequest
		d = decoder{b: b}
		r.decode(&d)
		_ = d.done()
	})
}

func TestParseQuorum(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"majority", QuorumMajority, false},
		{"", QuorumMajority, false},
		{"one", QuorumOne, false},
		{"1", QuorumOne, false},
		{"3", 3, false},
		{"0", 0, true},
		{"-2", 0, true},
		{"most", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseQuorum(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseQuorum(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseQuorum(%q) error %v does not wrap ErrInvalidConfig", tt.in, err)
		}
		if err == nil && tt.in != "" && tt.in != "1" && QuorumString(got) != tt.in {
			t.Errorf("QuorumString(%d) = %q, want %q", got, QuorumString(got), tt.in)
		}
	}
}
