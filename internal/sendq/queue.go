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
// goroutine that the last Push reporting start=true started.
type Queue struct {
	mu       sync.Mutex
	idle     sync.Cond // signalled when the writer stops
	chunks   [][]byte  // queued bytes, oldest first; each chunk is from pool
	msgs     int
	bytes    int
	maxMsgs  int
	maxBytes int
	closed   bool
	writing  bool          // a writer goroutine owns the drain
	paused   bool          // no writer may start (the stream is being replaced)
	space    chan struct{} // closed when room is made or the queue closes; nil if nobody waits
}

// Init sets the bounds. maxMsgs and maxBytes must be positive.
func (q *Queue) Init(maxMsgs, maxBytes int) {
	q.maxMsgs, q.maxBytes = maxMsgs, maxBytes
	q.idle.L = &q.mu
}

func size(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// Push queues a copy of parts as one message (its parts stay together, in order, whatever
// other goroutines send). start reports that no writer is running: the caller must start
// one that calls Drain. Push never blocks on the network.
func (q *Queue) Push(parts [][]byte) (start bool, err error) {
	n := size(parts)
	q.mu.Lock()
	start, err = q.pushLocked(parts, n)
	q.mu.Unlock()
	return start, err
}

func (q *Queue) pushLocked(parts [][]byte, n int) (bool, error) {
	if q.closed {
		return false, ErrClosed
	}
	if q.msgs > 0 && (q.msgs >= q.maxMsgs || q.bytes+n > q.maxBytes) {
		return false, ErrFull
	}
	q.msgs++
	q.bytes += n
	for _, p := range parts {
		q.appendLocked(p)
	}
	if q.writing || q.paused {
		return false, nil
	}
	q.writing = true
	return true, nil
}

// Pause waits for the writer to finish what it holds and keeps new writers from
// starting; messages are still queued. It is used while the connection under the queue is
// replaced (a TLS upgrade).
func (q *Queue) Pause() {
	q.mu.Lock()
	q.paused = true
	for q.writing {
		q.idle.Wait()
	}
	q.mu.Unlock()
}

// Resume undoes Pause. start reports that messages are waiting and no writer runs: the
// caller must start one.
func (q *Queue) Resume() (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.paused = false
	if len(q.chunks) > 0 && !q.writing && !q.closed {
		q.writing = true
		return true
	}
	return false
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
func (q *Queue) Wait(parts [][]byte, timeout time.Duration) (start bool, err error) {
	n := size(parts)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		start, err = q.pushLocked(parts, n)
		if err != ErrFull || timeout <= 0 {
			q.mu.Unlock()
			return start, err
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
			return false, ErrTimeout
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
// queue is closed. Only the goroutine started for a Push that returned start=true may call it.
func (q *Queue) Drain(w net.Conn, wrote func(n int64)) error {
	var batch [][]byte // the previous batch's slice, reused as the next chunk list
	var bufs net.Buffers
	for {
		q.mu.Lock()
		if len(q.chunks) == 0 {
			q.writing = false
			q.idle.Broadcast()
			q.mu.Unlock()
			return nil
		}
		taken := q.chunks
		q.chunks = batch[:0]
		q.msgs, q.bytes = 0, 0
		q.wakeLocked()
		q.mu.Unlock()

		// WriteTo consumes the slice it is called on, and nils the elements it has
		// written: write from a copy so taken still holds every chunk to release.
		bufs = append(bufs[:0], taken...)
		n, err := bufs.WriteTo(w)
		if n > 0 && wrote != nil {
			wrote(n)
		}
		for i, c := range taken {
			pool.Put(c)
			taken[i] = nil
		}
		batch = taken[:0]
		if err != nil {
			q.mu.Lock()
			q.closed = true
			q.discardLocked()
			q.writing = false
			q.idle.Broadcast()
			q.wakeLocked()
			q.mu.Unlock()
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
	for q.writing {
		q.idle.Wait()
	}
	q.mu.Unlock()
}

// Len returns the messages and bytes queued and not yet taken by the writer.
func (q *Queue) Len() (msgs, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.msgs, q.bytes
}
