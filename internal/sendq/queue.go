// Package sendq is a session's bounded send queue: any goroutine appends a copy of its
// bytes, one writer at a time drains everything queued in a single vectored write.
//
// Bytes are copied into pooled chunks as they are queued, so a sender may reuse its buffer
// as soon as Push returns, and many small messages leave in one write. The queue is bounded
// twice: in messages and in bytes. A message that alone exceeds the byte bound is still
// accepted into an empty queue, so large replies are possible without raising the bound.
package sendq

import (
	"errors"
	"math"
	"net"
	"sync"
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
)

// chunkSize is the size of the pooled chunks small messages are packed into.
const chunkSize = 16 << 10

var (
	// ErrFull reports that the queue holds its maximum messages or bytes.
	ErrFull = errors.New("send queue full")
	// ErrClosed reports that the queue was closed.
	ErrClosed = errors.New("send queue closed")
	// ErrTimeout reports that Wait gave up before room was made.
	ErrTimeout = errors.New("send timed out")
)

// Queue is a bounded, copying send queue. The zero value is not usable; call Init.
// Push, Wait, Close and Discard are safe from any goroutine; Drain runs on the one writer
// goroutine that the queue's start function started.
//
// The writer role is held by one goroutine at a time: a writer goroutine (Drain), a
// sender writing straight to the socket because the queue was empty (see SetDirect), or
// the session's reader flushing a held batch (Release). Whether a writer may start is
// the queue's state, three fields:
//
//	closed   no message is accepted any more (what is queued may still be written)
//	writing  the writer role is taken
//	gate     open: a writer starts when bytes are queued; held: the session's reader is
//	         dispatching a batch and writes it at Release; paused: nobody writes until
//	         Resume (the connection under the queue is being replaced)
type Queue struct {
	// The fields every send touches come first, within the first cache lines.
	mu      sync.Mutex
	closed  bool
	writing bool  // the writer role is taken
	gate    gate  // whether a writer may start (see above)
	flying  bool  // aside holds Flush's batch in flight
	msgs    int32 // messages queued (int32: it shares a word with the flags)
	bytes   int
	chunks  [][]byte // queued bytes, oldest first; each chunk is from pool
	dw      Direct   // the non-blocking writer of direct sends and Release, if any (SetDirect)
	maxMsgs int32
	// flightOff is how much of the first chunk in flight Flush has written.
	flightOff int32
	maxBytes  int
	owner     Owner // starts writers, is told of write errors

	// aside is the writer's slice (one writer at a time): while flying, the batch Flush
	// took and has not written whole yet (the writer role's holder only); otherwise a
	// spare slice, kept across drains so that taking a batch allocates nothing.
	aside [][]byte
	idle  chan struct{} // closed when the writer role is let go; nil if nobody waits
	space chan struct{} // closed when room is made or the queue closes; nil if nobody waits
}

// Owner is what a queue calls out to: its session's transport. An interface rather than
// funcs, so that a queue costs no closure of its own (a million idle sessions each hold
// a queue).
type Owner interface {
	// StartWriter starts a writer for the bytes queued: a goroutine that calls Drain, or
	// (an event loop) a non-blocking Flush now and again when the socket is writable.
	// The queue calls it, never under its lock, when it gave the writer role to the
	// writer to come.
	StartWriter()
	// WriteFailed is told of a write error in Drain, Flush or Release before the queue
	// closes and wakes its waiters, so the owner can record why first.
	WriteFailed(error)
}

// gate says whether a writer may start when bytes are queued.
type gate uint8

const (
	gateOpen   gate = iota // a writer starts as soon as bytes are queued
	gateHeld               // the reader holds a batch's replies until Release
	gatePaused             // nobody writes until Resume
)

// Init sets the bounds and the queue's owner. maxMsgs and maxBytes must be positive;
// maxMsgs is capped at math.MaxInt32.
func (q *Queue) Init(maxMsgs, maxBytes int, owner Owner) {
	q.maxMsgs, q.maxBytes, q.owner = int32(min(maxMsgs, math.MaxInt32)), maxBytes, owner
}

// wakeIdleLocked wakes the goroutines waiting for the writer role to end.
func (q *Queue) wakeIdleLocked() {
	if q.idle != nil {
		close(q.idle)
		q.idle = nil
	}
}

// waitIdleLocked waits, with q.mu held, until the writer role is free.
func (q *Queue) waitIdleLocked() {
	for q.writing {
		if q.idle == nil {
			q.idle = make(chan struct{})
		}
		idle := q.idle
		q.mu.Unlock()
		<-idle
		q.mu.Lock()
	}
}

// Direct writes to the queue's connection without ever blocking, and counts what it
// writes (the queue does not report the bytes it writes through it).
type Direct interface {
	// Try writes b, or as much of it as the socket takes, and returns ErrWouldBlock with
	// the count written when the socket is full.
	Try(b []byte) (int, error)
	// TryVec writes bufs in order with one vectored write, as much as the socket takes;
	// results as for Try.
	TryVec(bufs [][]byte) (int64, error)
}

// SetDirect lets a sender that finds the queue empty and no writer running write its
// message itself with d, which never blocks: the common reply then costs one system call
// on the sender's goroutine, and only what the socket cannot take at once is queued for
// a writer goroutine. Release writes a held batch through d too, in one vectored write.
// nil turns it off. Call it before the queue is used, or while it is paused.
//
// d is an interface rather than a pair of funcs so that a sender reaches the writer
// through the queue's own cache line and the writer's fields: a bound method value is one
// more small heap object, cold in the cache whenever many sessions take turns.
func (q *Queue) SetDirect(d Direct) {
	q.mu.Lock()
	q.dw = d
	q.mu.Unlock()
}

// Size returns the bytes in parts: the length of the message they make.
func Size(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// Push queues a copy of parts as one message (its parts stay together, in order, whatever
// other goroutines send), starting a writer if none runs; or, into an empty queue with
// SetDirect, writes it at once. It never blocks on the network.
func (q *Queue) Push(parts [][]byte) error { return q.PushFramed(nil, parts) }

// PushFramed is Push of the message head followed by parts: a protocol's frame header
// goes first without the caller building a slice of parts around it (a WebSocket send
// stays small on the stack).
func (q *Queue) PushFramed(head []byte, parts [][]byte) error {
	n := len(head) + Size(parts)
	q.mu.Lock()
	if q.directLocked() {
		return q.direct(head, parts, n)
	}
	start, err := q.pushLocked(head, parts, n)
	q.mu.Unlock()
	if start {
		q.owner.StartWriter()
	}
	return err
}

// directLocked takes the writer role for a direct send when nothing is queued and
// nobody writes; the caller then calls direct, which lets go of the lock.
func (q *Queue) directLocked() bool {
	if q.dw == nil || q.writing || q.gate != gateOpen || q.closed || len(q.chunks) > 0 {
		return false
	}
	q.writing = true
	return true
}

// direct writes one message with the Direct writer, holding the writer role taken by
// directLocked; it is called with q.mu held and releases it. What the socket does not
// take is queued first in line, and a writer goroutine started for it.
func (q *Queue) direct(head []byte, parts [][]byte, n int) error {
	dw := q.dw
	q.mu.Unlock()
	// The message is gathered into a pooled buffer even when it has one part: handing the
	// caller's slice to dw, an indirect call, would make every buffer passed to Send
	// escape to the heap, a stack-built header included.
	gathered := append(pool.Get(n)[:0], head...)
	for _, p := range parts {
		gathered = append(gathered, p...)
	}
	w, err := dw.Try(gathered)
	if err != nil && err != ErrWouldBlock {
		pool.Put(gathered)
		q.fail(err)
		return ErrClosed
	}
	q.mu.Lock()
	if w < len(gathered) {
		q.requeueLocked(gathered[w:])
	}
	start := len(q.chunks) > 0
	if !start {
		q.writing = false
		q.wakeIdleLocked()
	}
	q.mu.Unlock()
	pool.Put(gathered)
	if start {
		q.owner.StartWriter()
	}
	return nil
}

// requeueLocked puts rest, the part of a direct write the socket did not take, first in
// line: it is older than anything queued meanwhile. Out of direct's frame, which lies at
// the deepest point of a session's stack.
//
//go:noinline
func (q *Queue) requeueLocked(rest []byte) {
	c := pool.Get(max(chunkSize, len(rest)))[:0]
	q.chunks = append(q.chunks, nil)
	copy(q.chunks[1:], q.chunks)
	q.chunks[0] = append(c, rest...)
	q.msgs++
	q.bytes += len(rest)
}

// pushLocked queues head and parts; start reports that the caller must call q.start
// once it has released the lock.
func (q *Queue) pushLocked(head []byte, parts [][]byte, n int) (start bool, err error) {
	if q.closed {
		return false, ErrClosed
	}
	if q.msgs > 0 && (q.msgs >= q.maxMsgs || q.bytes+n > q.maxBytes) {
		// A full queue ends a Hold: waiting for the batch's end could wait forever if the
		// sender is the batch's own handler.
		if q.gate == gateHeld {
			q.gate = gateOpen
			if !q.writing {
				q.writing = true
				return true, ErrFull
			}
		}
		return false, ErrFull
	}
	q.msgs++
	q.bytes += n
	q.appendLocked(head)
	for _, p := range parts {
		q.appendLocked(p)
	}
	if q.writing || q.gate != gateOpen {
		return false, nil
	}
	q.writing = true
	return true, nil
}

// Hold defers writing until Release: the session's reader calls it when a read brought
// several requests, so the replies to all of them leave in one write.
func (q *Queue) Hold() {
	q.mu.Lock()
	if q.gate == gateOpen {
		q.gate = gateHeld
	}
	q.mu.Unlock()
}

// ErrWouldBlock is what a non-blocking write returns when the socket cannot take more
// bytes without blocking.
var ErrWouldBlock = errors.New("write would block")

// Release ends a Hold. If bytes are queued and no writer runs, it writes them at once on
// the caller's goroutine with the SetDirect write, if any; what cannot be written at once
// goes to a writer it starts. err is a write error (the queue is then closed and emptied).
func (q *Queue) Release() error {
	start, err := q.writeHeld()
	if start {
		q.owner.StartWriter()
	}
	return err
}

// writeHeld is Release's work: it opens the gate and writes what the batch queued with
// the Direct writer; start reports that a writer goroutine must take the rest.
func (q *Queue) writeHeld() (start bool, err error) {
	q.mu.Lock()
	if q.gate == gateHeld {
		q.gate = gateOpen
	}
	if q.writing || q.gate == gatePaused || len(q.chunks) == 0 {
		q.mu.Unlock()
		return false, nil
	}
	q.writing = true
	if q.dw == nil || q.closed {
		q.mu.Unlock()
		return true, nil
	}
	full, err := q.writeLocked()
	if err != nil || full {
		return full, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.chunks) > 0 && !q.closed {
		return true, nil // queued by other goroutines while we wrote
	}
	q.writing = false
	q.wakeIdleLocked()
	return false, nil
}

// Flush writes what is queued with the Direct writer, for a caller that holds the writer
// role without a goroutine that may block: an event loop, which the queue's start
// function tells to write, and which calls Flush again once the socket is writable.
// Like a writer goroutine's Drain, it takes everything queued as one batch, which it
// writes whole before it takes the next: the batch is in flight, no longer counted
// against the queue's bounds. blocked reports that the socket could not take the rest
// of the batch: the caller keeps the role. Otherwise the queue is empty and the role
// ends (the next Push reports start again). A write error closes the queue and empties
// it, as Drain's does. Unlike Release, it also writes what a closed queue still holds
// (the caller bounds the linger).
func (q *Queue) Flush() (blocked bool, err error) {
	for {
		q.mu.Lock()
		if !q.flying {
			if len(q.chunks) == 0 {
				q.writing = false
				q.wakeIdleLocked()
				q.mu.Unlock()
				return false, nil
			}
			q.aside, q.flightOff = q.takeLocked(), 0
			q.flying = true
		}
		flight, off, dw := q.aside, int(q.flightOff), q.dw
		q.mu.Unlock()

		var n int64
		if len(flight) == 1 {
			var w int
			w, err = dw.Try(flight[0][off:])
			n = int64(w)
		} else {
			// flight[0] stays the whole chunk, for the pool: sliced for the write only.
			first := flight[0]
			flight[0] = first[off:]
			n, err = dw.TryVec(flight)
			flight[0] = first
		}
		if err != nil && err != ErrWouldBlock {
			q.mu.Lock()
			q.dropFlightLocked()
			q.mu.Unlock()
			q.fail(err)
			return false, err
		}
		// Skip what was written: whole chunks, back to the pool, then part of the next.
		i := 0
		for i < len(flight) && n >= int64(len(flight[i])-off) {
			n -= int64(len(flight[i]) - off)
			pool.Put(flight[i])
			flight[i] = nil
			off, i = 0, i+1
		}
		q.mu.Lock()
		if i < len(flight) {
			q.aside, q.flightOff = flight[i:], int32(off+int(n))
			q.mu.Unlock()
			return true, nil
		}
		q.aside, q.flying = flight[:0], false
		q.mu.Unlock()
	}
}

// Abandon drops what is queued and what a Flush has in flight, and ends the writer role;
// only the role's holder may call it (an event loop that takes back a role parked for a
// socket that stays full).
func (q *Queue) Abandon() {
	q.mu.Lock()
	q.discardLocked()
	q.dropFlightLocked()
	q.writing = false
	q.wakeIdleLocked()
	q.mu.Unlock()
}

// dropFlightLocked drops the batch in flight, if any.
func (q *Queue) dropFlightLocked() {
	if !q.flying {
		return
	}
	for i, c := range q.aside {
		pool.Put(c)
		q.aside[i] = nil
	}
	q.aside, q.flying = q.aside[:0], false
}

// writeLocked writes every queued chunk with the Direct writer, for the holder of the
// writer role; it is called with q.mu held and releases it. full reports that the socket
// did not take everything: what is left goes back to the front of the queue, before
// anything queued meanwhile. After a write error the queue is closed and emptied.
func (q *Queue) writeLocked() (full bool, err error) {
	dw := q.dw
	taken := q.takeLocked()
	q.mu.Unlock()

	// i and off: the first chunk not wholly written, and how much of it was.
	i, off := 0, 0
	var err2 error
	if len(taken) == 1 {
		n, err := dw.Try(taken[0])
		if n == len(taken[0]) {
			i = 1
		} else {
			off = n
		}
		err2 = err
	} else {
		n, err := dw.TryVec(taken)
		for i < len(taken) && n >= int64(len(taken[i])) {
			n -= int64(len(taken[i]))
			i++
		}
		off, err2 = int(n), err
	}
	if err2 != nil && err2 != ErrWouldBlock {
		q.recycle(taken)
		q.fail(err2)
		return false, err2
	}
	if i < len(taken) {
		// The socket is full: what is left goes back to the front of the queue, before
		// anything queued meanwhile.
		rest := append([][]byte{taken[i][off:]}, taken[i+1:]...)
		for j := range taken[:i] {
			pool.Put(taken[j])
		}
		q.mu.Lock()
		rest = append(rest, q.chunks...)
		q.chunks, q.aside = rest, taken[:0]
		q.mu.Unlock()
		return true, nil
	}
	q.recycle(taken)
	return false, nil
}

// takeLocked takes every queued chunk for writing and makes room for waiters.
func (q *Queue) takeLocked() [][]byte {
	taken := q.chunks
	q.chunks = q.aside[:0]
	q.aside = nil
	q.msgs, q.bytes = 0, 0
	q.wakeLocked()
	return taken
}

// recycle returns written chunks to the pool and keeps their slice for the next take.
func (q *Queue) recycle(taken [][]byte) {
	for i, c := range taken {
		pool.Put(c)
		taken[i] = nil
	}
	q.mu.Lock()
	if q.aside == nil {
		q.aside = taken[:0]
	}
	q.mu.Unlock()
}

// writeBufs recycles Drain's copies of a batch, which WriteTo consumes.
var writeBufs = sync.Pool{New: func() any { return new(net.Buffers) }}

// fail closes the queue after a write error, dropping what is queued.
func (q *Queue) fail(err error) {
	q.owner.WriteFailed(err)
	q.mu.Lock()
	q.closed = true
	q.discardLocked()
	q.writing = false
	q.wakeIdleLocked()
	q.wakeLocked()
	q.mu.Unlock()
}

// Pause keeps new writers from starting and waits until a running writer has drained the
// queue; messages pushed afterwards stay queued until Resume. It is used while the
// connection under the queue is replaced (a TLS upgrade).
func (q *Queue) Pause() {
	q.mu.Lock()
	q.gate = gatePaused
	q.waitIdleLocked()
	q.mu.Unlock()
}

// Resume undoes Pause, starting a writer for messages queued meanwhile.
func (q *Queue) Resume() {
	q.mu.Lock()
	q.gate = gateOpen
	start := len(q.chunks) > 0 && !q.writing && !q.closed
	if start {
		q.writing = true
	}
	q.mu.Unlock()
	if start {
		q.owner.StartWriter()
	}
}

// appendLocked copies p to the tail chunk, opening new chunks as needed.
func (q *Queue) appendLocked(p []byte) {
	for len(p) > 0 {
		if k := len(q.chunks); k > 0 {
			tail := q.chunks[k-1]
			if room := cap(tail) - len(tail); room > 0 {
				c := min(room, len(p))
				q.chunks[k-1] = append(tail, p[:c]...)
				p = p[c:]
				continue
			}
		}
		q.chunks = append(q.chunks, pool.Get(max(chunkSize, len(p)))[:0])
	}
}

// Wait is Push that, while the queue is full, waits for room up to timeout (≤ 0: not at
// all) or until the queue closes. It parks on a channel; it never spins.
func (q *Queue) Wait(parts [][]byte, timeout time.Duration) error {
	return q.WaitFramed(nil, parts, timeout)
}

// WaitFramed is Wait of the message head followed by parts (see PushFramed).
func (q *Queue) WaitFramed(head []byte, parts [][]byte, timeout time.Duration) error {
	// The common case, room in the queue, costs what Push costs: no timer, no defer.
	if err := q.PushFramed(head, parts); err != ErrFull || timeout <= 0 {
		return err
	}
	return q.WaitForRoom(head, parts, timeout)
}

// WaitForRoom is WaitFramed's slow path, for a caller whose PushFramed found the queue
// full: it waits up to timeout for room, then queues head and parts. Calling it after
// PushFramed rather than WaitFramed saves a stack frame on the common path, at the
// deepest point of a session's stack.
func (q *Queue) WaitForRoom(head []byte, parts [][]byte, timeout time.Duration) error {
	n := len(head) + Size(parts)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if q.directLocked() {
			return q.direct(head, parts, n)
		}
		start, err := q.pushLocked(head, parts, n)
		if start {
			q.mu.Unlock()
			q.owner.StartWriter()
			if err != ErrFull || timeout <= 0 {
				return err
			}
			continue // the lock was let go: look again before waiting
		}
		if err != ErrFull || timeout <= 0 {
			q.mu.Unlock()
			return err
		}
		if q.space == nil {
			q.space = make(chan struct{})
		}
		space := q.space
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(timeout)
		}
		select {
		case <-space:
		case <-timer.C:
			return ErrTimeout
		}
	}
}

// wakeLocked releases every waiter of Wait.
func (q *Queue) wakeLocked() {
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
}

// Drain writes everything queued to w, batch after batch, until the queue is empty; then
// the writer role ends (the next Push reports start again). It returns the bytes written
// and the first write error; after an error the rest of the queue is discarded and the
// queue is closed. Only the goroutine the queue's start function started may call it.
func (q *Queue) Drain(w net.Conn, wrote func(n int64)) error {
	for {
		q.mu.Lock()
		if len(q.chunks) == 0 {
			q.writing = false
			q.wakeIdleLocked()
			q.mu.Unlock()
			return nil
		}
		taken := q.takeLocked()
		q.mu.Unlock()

		// WriteTo consumes the slice it is called on, and nils the elements it has
		// written: write from a copy so taken still holds every chunk to release.
		bp := writeBufs.Get().(*net.Buffers)
		bufs := append((*bp)[:0], taken...)
		n, err := bufs.WriteTo(w)
		if n > 0 && wrote != nil {
			wrote(n)
		}
		clear(bufs[:cap(bufs)])
		*bp = bufs[:0]
		writeBufs.Put(bp)
		q.recycle(taken)
		if err != nil {
			q.fail(err)
			return err
		}
	}
}

// Close refuses further messages and wakes every waiter. Bytes already queued stay for the
// writer to flush. It reports whether a writer is still running.
func (q *Queue) Close() (writing bool) {
	q.mu.Lock()
	q.closed = true
	q.wakeLocked()
	writing = q.writing
	q.mu.Unlock()
	return writing
}

// CloseWith queues parts as the last message, whatever the bounds, then closes the queue
// as Close does: a protocol's goodbye (a WebSocket close frame) goes after everything
// queued before it. If the queue is already closed, parts are dropped. It reports
// whether a writer is running (or was started for parts).
func (q *Queue) CloseWith(parts [][]byte) (writing bool) {
	q.mu.Lock()
	start := false
	if !q.closed {
		q.msgs++
		q.bytes += Size(parts)
		for _, p := range parts {
			q.appendLocked(p)
		}
		if !q.writing && q.gate == gateOpen {
			q.writing, start = true, true
		}
	}
	q.closed = true
	q.wakeLocked()
	writing = q.writing
	q.mu.Unlock()
	if start {
		q.owner.StartWriter()
	}
	return writing
}

// Discard drops every queued byte, returning the chunks to the pool.
func (q *Queue) Discard() {
	q.mu.Lock()
	q.discardLocked()
	q.mu.Unlock()
}

func (q *Queue) discardLocked() {
	for i, c := range q.chunks {
		pool.Put(c)
		q.chunks[i] = nil
	}
	q.chunks = q.chunks[:0]
	q.msgs, q.bytes = 0, 0
}

// WaitIdle blocks until no writer is running. Writers are bounded by the connection's
// write deadline, so the wait is too.
func (q *Queue) WaitIdle() {
	q.mu.Lock()
	q.waitIdleLocked()
	q.mu.Unlock()
}

// Busy reports whether the writer role is taken: bytes are being written, or wait to be.
func (q *Queue) Busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.writing
}

// Len returns the messages and bytes queued and not yet taken by the writer.
func (q *Queue) Len() (msgs, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int(q.msgs), q.bytes
}
