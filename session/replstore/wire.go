package replstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/statelab/statelab/session"
)

// The RPC messages and their binary encoding: unsigned varints for versions
// and lengths, signed varints for Unix-nanosecond times (0 for the zero
// time), length-prefixed bytes for keys and data.

// Message kinds of the replication RPC.
const (
	kindWrite     byte = 1 // a client write forwarded to the key's primary
	kindReplicate byte = 2 // a primary's write sent to a backup
	kindGet       byte = 3 // a read of a replica's copy
	kindMerge     byte = 4 // a batch of copies pushed by a rebalance or async replication
	kindError     byte = 0xff
)

// Operations a write request carries.
const (
	opPut    byte = 1
	opTouch  byte = 2
	opDelete byte = 3
)

func opName(op byte) string {
	switch op {
	case opPut:
		return "put"
	case opTouch:
		return "touch"
	case opDelete:
		return "delete"
	}
	return fmt.Sprintf("op%d", op)
}

type writeRequest struct {
	Op    byte
	Key   string
	Entry entry
	Hops  byte
}

type writeResponse struct {
	Version uint64
	Code    byte // 0: success; else an errorCodes code
	Message string
}

type replicateRequest struct {
	Key   string
	Prev  uint64
	Entry entry
}

type replicateResponse struct {
	OK      bool
	Current entry
}

type getResponse struct {
	Held  bool
	Entry entry
}

type mergeItem struct {
	Key   string
	Entry entry
}

// Error codes carried by writeResponse.Code, mapped to and from sentinels.
var errorCodes = []struct {
	code byte
	err  error
}{
	{1, session.ErrConflict},
	{2, session.ErrNotFound},
	{3, ErrInvalidKey},
	{4, session.ErrUnavailable},
}

// codeOther is the code of an error no sentinel describes.
const codeOther byte = 0xff

func errorCode(err error) byte {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return codeOther
}

func codeError(code byte, msg string) error {
	for _, c := range errorCodes {
		if c.code == code {
			return fmt.Errorf("%w (remote: %s)", c.err, msg)
		}
	}
	return fmt.Errorf("replstore: remote error: %s", msg)
}

// errMalformed is returned when a message cannot be decoded.
var errMalformed = errors.New("replstore: malformed message")

// encoder appends to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) byte1(v byte)     { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(v []byte)   { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) str(v string)     { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) bool1(v bool) {
	if v {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
}
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.varint(0)
		return
	}
	e.varint(t.UnixNano())
}
func (e *encoder) entry(x entry) {
	e.uvarint(x.Rec.Version)
	e.time(x.Rec.IdleExpiry)
	e.time(x.Rec.AbsoluteExpiry)
	e.bool1(x.Deleted)
	e.time(x.DeletedAt)
	e.bytes(x.Rec.Data)
}

// decoder reads what encoder wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errMalformed
	}
	d.b = nil
}

func (d *decoder) byte1() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) bool1() bool { return d.byte1() != 0 }

func (d *decoder) time() time.Time {
	n := d.varint()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (d *decoder) entry() entry {
	var x entry
	x.Rec.Version = d.uvarint()
	x.Rec.IdleExpiry = d.time()
	x.Rec.AbsoluteExpiry = d.time()
	x.Deleted = d.bool1()
	x.DeletedAt = d.time()
	x.Rec.Data = d.bytes()
	return x
}

// done returns the decoding error, or errMalformed if bytes are left over.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errMalformed
	}
	return d.err
}

func (r writeRequest) encode(e *encoder) {
	e.byte1(r.Op)
	e.str(r.Key)
	e.entry(r.Entry)
	e.byte1(r.Hops)
}

func (r *writeRequest) decode(d *decoder) {
	r.Op, r.Key, r.Entry, r.Hops = d.byte1(), d.str(), d.entry(), d.byte1()
}

func (r writeResponse) encode(e *encoder) {
	e.uvarint(r.Version)
	e.byte1(r.Code)
	e.str(r.Message)
}

func (r *writeResponse) decode(d *decoder) {
	r.Version, r.Code, r.Message = d.uvarint(), d.byte1(), d.str()
}

func (r replicateRequest) encode(e *encoder) {
	e.str(r.Key)
	e.uvarint(r.Prev)
	e.entry(r.Entry)
}

func (r *replicateRequest) decode(d *decoder) {
	r.Key, r.Prev, r.Entry = d.str(), d.uvarint(), d.entry()
}

func (r replicateResponse) encode(e *encoder) {
	e.bool1(r.OK)
	e.entry(r.Current)
}

func (r *replicateResponse) decode(d *decoder) {
	r.OK, r.Current = d.bool1(), d.entry()
}

func (r getResponse) encode(e *encoder) {
	e.bool1(r.Held)
	e.entry(r.Entry)
}

func (r *getResponse) decode(d *decoder) {
	r.Held, r.Entry = d.bool1(), d.entry()
}

func encodeMerge(e *encoder, items []mergeItem) {
	e.uvarint(uint64(len(items)))
	for _, it := range items {
		e.str(it.Key)
		e.entry(it.Entry)
	}
}

func decodeMerge(d *decoder) []mergeItem {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every item takes at least one byte
		d.fail()
		return nil
	}
	items := make([]mergeItem, 0, n)
	for range n {
		items = append(items, mergeItem{Key: d.str(), Entry: d.entry()})
	}
	return items
}
