package sendq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// waitLong bounds every wait for something that must happen.
const waitLong = 10 * time.Second

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (w, r net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	w, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r = <-accepted
	if r == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { w.Close(); r.Close() })
	return w, r
}

// collect reads r until EOF on another goroutine; the result arrives once r's peer closes.
func collect(r net.Conn) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		r.SetReadDeadline(time.Now().Add(waitLong))
		b, _ := io.ReadAll(r)
		ch <- b
	}()
	return ch
}

func recv[V any](t *testing.T, ch <-chan V, what string) V {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLong):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// startFunc is an Owner that starts writers with itself and ignores write errors.
type startFunc func()

func (f startFunc) StartWriter()      { f() }
func (f startFunc) WriteFailed(error) {}

// testQueue is a Queue whose start function only counts, so tests can see when the queue
// asks for a writer and play the writer themselves.
type testQueue struct {
	*Queue
	starts atomic.Int32
}

func newQueue(msgs, bytes int) *testQueue {
	tq := &testQueue{Queue: &Queue{}}
	tq.Init(msgs, bytes, startFunc(func() { tq.starts.Add(1) }))
	return tq
}

// Push is Queue.Push, reporting whether it asked for a writer.
func (tq *testQueue) Push(parts [][]byte) (start bool, err error) {
	before := tq.starts.Load()
	err = tq.Queue.Push(parts)
	return tq.starts.Load() != before, err
}

// Wait is Queue.Wait, reporting whether it asked for a writer.
func (tq *testQueue) Wait(parts [][]byte, d time.Duration) (start bool, err error) {
	before := tq.starts.Load()
	err = tq.Queue.Wait(parts, d)
	return tq.starts.Load() != before, err
}

func msg(parts ...string) [][]byte {
	out := make([][]byte, len(parts))
	for i, p := range parts {
		out[i] = []byte(p)
	}
	return out
}

func expectLen(t *testing.T, q *testQueue, msgs, bytes int) {
	t.Helper()
	if m, b := q.Len(); m != msgs || b != bytes {
		t.Fatalf("Len() = %d messages, %d bytes; want %d, %d", m, b, msgs, bytes)
	}
}

func TestPush_StartIsReportedOnlyWhenNoWriterRuns(t *testing.T) {
	q := newQueue(10, 1000)
	start, err := q.Push(msg("one"))
	if err != nil || !start {
		t.Fatalf("first Push: start %v, %v; want true, nil", start, err)
	}
	start, err = q.Push(msg("two"))
	if err != nil || start {
		t.Fatalf("second Push: start %v, %v; want false (a writer is due), nil", start, err)
	}
	expectLen(t, q, 2, 6)

	w, r := tcpPair(t)
	got := collect(r)
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	expectLen(t, q, 0, 0)
	// The writer role ended with Drain: the next Push must start one again.
	if start, err := q.Push(msg("three")); err != nil || !start {
		t.Fatalf("Push after Drain: start %v, %v; want true, nil", start, err)
	}
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := recv(t, got, "the reader"); string(b) != "onetwothree" {
		t.Fatalf("wrote %q", b)
	}
}

func TestPush_MessageBound(t *testing.T) {
	q := newQueue(2, 1000)
	for i := range 2 {
		if _, err := q.Push(msg("m")); err != nil {
			t.Fatalf("Push %d: %v", i, err)
		}
	}
	if _, err := q.Push(msg("m")); !errors.Is(err, ErrFull) {
		t.Fatalf("Push beyond 2 messages: %v, want ErrFull", err)
	}
	expectLen(t, q, 2, 2) // a refused message leaves nothing behind
}

func TestPush_ByteBound(t *testing.T) {
	q := newQueue(100, 10)
	steps := []struct {
		n    int
		want error
	}{{6, nil}, {5, ErrFull}, {4, nil}, {1, ErrFull}}
	for i, s := range steps {
		if _, err := q.Push([][]byte{make([]byte, s.n)}); !errors.Is(err, s.want) {
			t.Fatalf("step %d: Push(%d bytes) = %v, want %v", i, s.n, err, s.want)
		}
	}
	expectLen(t, q, 2, 10)
}

// A message larger than the byte bound is accepted into an empty queue, and only there.
func TestPush_EmptyQueueAcceptsAnOversizedMessage(t *testing.T) {
	q := newQueue(10, 10)
	if _, err := q.Push([][]byte{make([]byte, 100)}); err != nil {
		t.Fatalf("oversized message into an empty queue: %v", err)
	}
	if _, err := q.Push(msg("x")); !errors.Is(err, ErrFull) {
		t.Fatalf("Push after the oversized message: %v, want ErrFull", err)
	}
	if _, err := q.Push([][]byte{make([]byte, 100)}); !errors.Is(err, ErrFull) {
		t.Fatalf("second oversized message: %v, want ErrFull", err)
	}
	q2 := newQueue(10, 10)
	q2.Push(msg("a"))
	if _, err := q2.Push([][]byte{make([]byte, 100)}); !errors.Is(err, ErrFull) {
		t.Fatalf("oversized message into a non-empty queue: %v, want ErrFull", err)
	}
}

// The parts of one Push count as one message, and leave contiguous and in order.
func TestPush_PartsAreOneMessage(t *testing.T) {
	q := newQueue(1, 1000)
	if _, err := q.Push(msg("a", "bc", "", "def")); err != nil {
		t.Fatal(err)
	}
	expectLen(t, q, 1, 6)
	if _, err := q.Push(msg("g")); !errors.Is(err, ErrFull) {
		t.Fatalf("second message with a 1-message bound: %v", err)
	}
}

// Push copies: the caller's buffer may change as soon as Push returns.
func TestPush_Copies(t *testing.T) {
	q := newQueue(10, 1<<20)
	buf := []byte("original")
	q.Push([][]byte{buf})
	copy(buf, "XXXXXXXX")
	big := bytes.Repeat([]byte("0123456789"), 5000) // spans several chunks
	want := append([]byte("original"), big...)
	q.Push([][]byte{big})
	for i := range big {
		big[i] = '#'
	}
	w, r := tcpPair(t)
	got := collect(r)
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := recv(t, got, "the reader"); !bytes.Equal(b, want) {
		t.Fatalf("wrote %d bytes that differ from the %d pushed: Push did not copy", len(b), len(want))
	}
}

func TestDrain_WritesEverythingInOrderAndCounts(t *testing.T) {
	q := newQueue(1000, 1<<20)
	var want bytes.Buffer
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		body := make([]byte, rng.IntN(3000))
		for j := range body {
			body[j] = byte('a' + i%26)
		}
		head := fmt.Sprintf("<%d>", i)
		if _, err := q.Push([][]byte{[]byte(head), body}); err != nil {
			t.Fatal(err)
		}
		want.WriteString(head)
		want.Write(body)
	}
	w, r := tcpPair(t)
	got := collect(r)
	var wrote int64
	if err := q.Drain(w, func(n int64) { wrote += n }); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := recv(t, got, "the reader"); !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("wrote %d bytes, want %d in push order", len(b), want.Len())
	}
	if wrote != int64(want.Len()) {
		t.Fatalf("wrote callback counted %d, want %d", wrote, want.Len())
	}
}

// Drain hands the chunks it wrote back to the pool, so steady traffic reuses them instead
// of allocating a chunk per batch.
func TestDrain_ReusesPooledChunks(t *testing.T) {
	// With the GC off, a freed chunk's address cannot come back as a new allocation: a
	// repeated address can only be a chunk the pool gave back.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	q := newQueue(10, 1<<20)
	w, r := tcpPair(t)
	got := collect(r)
	seen := map[unsafe.Pointer]bool{}
	reused := 0
	for range 50 {
		if _, err := q.Push(msg("ping")); err != nil {
			t.Fatal(err)
		}
		q.mu.Lock()
		chunk := unsafe.Pointer(unsafe.SliceData(q.chunks[0]))
		q.mu.Unlock()
		if seen[chunk] {
			reused++
		}
		seen[chunk] = true
		if err := q.Drain(w, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if b := recv(t, got, "the reader"); len(b) != 50*4 {
		t.Fatalf("wrote %d bytes", len(b))
	}
	if reused == 0 {
		t.Fatalf("50 batches used 50 distinct chunks: Drain does not return its chunks to the pool")
	}
}

func TestDrain_WriteErrorClosesAndDiscards(t *testing.T) {
	q := newQueue(10, 1000)
	w, _ := tcpPair(t)
	q.Push(msg("doomed"))
	w.Close()
	if err := q.Drain(w, nil); err == nil {
		t.Fatal("Drain to a closed connection returned nil")
	}
	expectLen(t, q, 0, 0)
	if _, err := q.Push(msg("after")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after a write error: %v, want ErrClosed", err)
	}
	done := make(chan struct{})
	go func() { q.WaitIdle(); close(done) }()
	recv(t, done, "WaitIdle after the failed Drain")
}

func TestClose_RefusesNewMessagesAndKeepsQueuedOnes(t *testing.T) {
	q := newQueue(10, 1000)
	start, _ := q.Push(msg("queued "))
	q.Push(msg("before close"))
	if !start {
		t.Fatal("first Push did not report start")
	}
	if writing := q.Close(); !writing {
		t.Fatal("Close reported no writer although a Push reported start and no Drain ended")
	}
	if _, err := q.Push(msg("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after Close: %v, want ErrClosed", err)
	}
	if _, err := q.Wait(msg("late"), time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v, want ErrClosed", err)
	}
	w, r := tcpPair(t)
	got := collect(r)
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := recv(t, got, "the reader"); string(b) != "queued before close" {
		t.Fatalf("Drain after Close wrote %q, want the bytes queued before it", b)
	}
	if writing := q.Close(); writing {
		t.Fatal("Close reported a writer after Drain ended")
	}
}

func TestDiscard_DropsEverythingQueued(t *testing.T) {
	q := newQueue(10, 1<<20)
	q.Push(msg("a"))
	q.Push([][]byte{make([]byte, 50000)})
	q.Discard()
	expectLen(t, q, 0, 0)
	w, r := tcpPair(t)
	got := collect(r)
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := recv(t, got, "the reader"); len(b) != 0 {
		t.Fatalf("Drain after Discard wrote %d bytes", len(b))
	}
	// Discard does not close: the queue takes messages again, bounds reset.
	if _, err := q.Push(msg("again")); err != nil {
		t.Fatalf("Push after Discard: %v", err)
	}
}

func TestWait_PushesAtOnceWhenThereIsRoom(t *testing.T) {
	q := newQueue(2, 100)
	start := time.Now()
	if s, err := q.Wait(msg("x"), waitLong); err != nil || !s {
		t.Fatalf("Wait on an empty queue: %v, %v", s, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Wait with room took %v", d)
	}
}

func TestWait_WithoutTimeoutDoesNotWait(t *testing.T) {
	q := newQueue(1, 100)
	q.Push(msg("full"))
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := q.Wait(msg("x"), d); !errors.Is(err, ErrFull) {
			t.Fatalf("Wait(timeout %v) on a full queue: %v, want ErrFull", d, err)
		}
	}
}

func TestWait_ParksThenTimesOut(t *testing.T) {
	const timeout = 100 * time.Millisecond
	q := newQueue(1, 100)
	q.Push(msg("full"))
	start := time.Now()
	_, err := q.Wait(msg("x"), timeout)
	d := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait on a full queue: %v, want ErrTimeout", err)
	}
	if d < timeout || d > timeout+5*time.Second {
		t.Fatalf("Wait returned after %v, want about %v", d, timeout)
	}
	expectLen(t, q, 1, 4)
}

// parked waits until a Wait call is parked on the queue's space channel.
func parked(t *testing.T, q *Queue) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		q.mu.Lock()
		p := q.space != nil
		q.mu.Unlock()
		if p {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Wait never parked")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWait_WokenByClose(t *testing.T) {
	q := newQueue(1, 100)
	q.Push(msg("full"))
	res := make(chan error, 1)
	go func() {
		_, err := q.Wait(msg("x"), time.Hour)
		res <- err
	}()
	parked(t, q.Queue)
	q.Close()
	if err := recv(t, res, "the parked Wait"); !errors.Is(err, ErrClosed) {
		t.Fatalf("parked Wait woken by Close returned %v, want ErrClosed", err)
	}
}

func TestWait_WokenWhenTheWriterMakesRoom(t *testing.T) {
	q := newQueue(1, 100)
	start, _ := q.Push(msg("first "))
	if !start {
		t.Fatal("no start")
	}
	type result struct {
		start bool
		err   error
	}
	res := make(chan result, 1)
	go func() {
		s, err := q.Wait(msg("second"), time.Hour)
		res <- result{s, err}
	}()
	parked(t, q.Queue)
	w, r := tcpPair(t)
	got := collect(r)
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	rs := recv(t, res, "the parked Wait")
	if rs.err != nil {
		t.Fatalf("Wait after the writer made room: %v", rs.err)
	}
	// Whether the second message went out in the same Drain depends on timing; if the
	// Wait started a new writer role, drain again.
	if rs.start {
		if err := q.Drain(w, nil); err != nil {
			t.Fatal(err)
		}
	}
	q.WaitIdle()
	w.Close()
	if b := recv(t, got, "the reader"); string(b) != "first second" {
		t.Fatalf("wrote %q", b)
	}
}

func TestWaitIdle_BlocksWhileAWriterRuns(t *testing.T) {
	q := newQueue(10, 100)
	q.WaitIdle() // no writer: returns at once
	q.Push(msg("x"))
	idle := make(chan struct{})
	go func() { q.WaitIdle(); close(idle) }()
	select {
	case <-idle:
		t.Fatal("WaitIdle returned while a writer was due")
	case <-time.After(20 * time.Millisecond):
	}
	w, r := tcpPair(t)
	collect(r)
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	recv(t, idle, "WaitIdle after Drain")
}

// Many goroutines push (with Wait) while writers drain: every message arrives whole, and
// each goroutine's messages in order.
func TestQueue_ConcurrentSendersAndWriter(t *testing.T) {
	const senders, each = 8, 200
	w, r := tcpPair(t)
	got := collect(r)
	var writers sync.WaitGroup
	q := &Queue{}
	q.Init(16, 4096, startFunc(func() { // the queue's own start function: one writer at a time
		writers.Go(func() {
			if err := q.Drain(w, nil); err != nil {
				t.Errorf("Drain: %v", err)
			}
		})
	}))
	var sendersWG sync.WaitGroup
	for g := range senders {
		sendersWG.Go(func() {
			for i := range each {
				body := bytes.Repeat([]byte{'a' + byte(g)}, 1+(i*31)%500)
				if err := q.Wait([][]byte{fmt.Appendf(nil, "%d:%d:", g, i), body, []byte("\n")}, waitLong); err != nil {
					t.Errorf("sender %d: %v", g, err)
					return
				}
			}
		})
	}
	sendersWG.Wait()
	writers.Wait()
	q.WaitIdle()
	w.Close()
	next := make([]int, senders)
	lines := bytes.Split(bytes.TrimSuffix(recv(t, got, "the reader"), []byte("\n")), []byte("\n"))
	if len(lines) != senders*each {
		t.Fatalf("%d messages arrived, want %d", len(lines), senders*each)
	}
	for _, l := range lines {
		var g, i int
		var body string
		if _, err := fmt.Sscanf(string(l), "%d:%d:%s", &g, &i, &body); err != nil || g < 0 || g >= senders {
			t.Fatalf("garbled message %q", l)
		}
		if i != next[g] || body != string(bytes.Repeat([]byte{'a' + byte(g)}, 1+(i*31)%500)) {
			t.Fatalf("sender %d: got message %d (%d-byte body), want message %d intact", g, i, len(body), next[g])
		}
		next[g]++
	}
}

func TestHold_DefersTheWriterUntilRelease(t *testing.T) {
	q := newQueue(10, 1000)
	q.Hold()
	if start, err := q.Push(msg("a")); err != nil || start {
		t.Fatalf("Push while held: start %v, %v; want no writer", start, err)
	}
	q.Push(msg("b", "c"))
	var wrote []string
	try := func(b []byte) (int, error) { wrote = append(wrote, string(b)); return len(b), nil }
	q.SetDirect(funcDirect{t: t, try: try})
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if len(wrote) != 1 || wrote[0] != "abc" {
		t.Fatalf("Release wrote %q, want one write of abc", wrote)
	}
	if n := q.starts.Load(); n != 0 {
		t.Fatalf("%d writers started although everything was written inline", n)
	}
	if start, _ := q.Push(msg("d")); start || len(wrote) != 2 || wrote[1] != "d" {
		t.Fatalf("after Release the next Push must be written directly; writes %q", wrote)
	}
}

func TestRelease_LeavesWhatWouldBlockToAWriter(t *testing.T) {
	q := newQueue(10, 1000)
	q.Hold()
	q.Push(msg("hello world"))
	try := func(b []byte) (int, error) { return 5, ErrWouldBlock }
	q.SetDirect(funcDirect{t: t, try: try})
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if n := q.starts.Load(); n != 1 {
		t.Fatalf("%d writers started, want 1 for the rest", n)
	}
	if out := string(drainAll(t, q)); out != " world" {
		t.Fatalf("writer wrote %q, want the unwritten rest", out)
	}
}

func TestRelease_WriteErrorClosesTheQueue(t *testing.T) {
	q := newQueue(10, 1000)
	q.Hold()
	q.Push(msg("x"))
	boom := errors.New("boom")
	q.SetDirect(funcDirect{t: t, try: func([]byte) (int, error) { return 0, boom }})
	if err := q.Release(); !errors.Is(err, boom) {
		t.Fatalf("Release: %v, want boom", err)
	}
	if _, err := q.Push(msg("y")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after a failed write: %v", err)
	}
}

// TestHold_FullQueueStartsTheWriter: a handler that fills its own queue while its batch is
// held must not wait for the batch's end, which would never come.
func TestHold_FullQueueStartsTheWriter(t *testing.T) {
	q := newQueue(1, 1000)
	q.Hold()
	q.Push(msg("first"))
	if start, err := q.Push(msg("second")); !errors.Is(err, ErrFull) || !start {
		t.Fatalf("Push on a full held queue: start %v, %v; want a writer and ErrFull", start, err)
	}
}

// TestDirect_WritesAtOnceAndQueuesTheRest: with SetDirect, a send into an idle queue is
// written by the sender; what the socket does not take is queued for a writer, before
// anything sent meanwhile.
func TestDirect_WritesAtOnceAndQueuesTheRest(t *testing.T) {
	q := newQueue(10, 1000)
	var wrote []string
	full := false
	q.SetDirect(funcDirect{t: t, try: func(b []byte) (int, error) {
		if full {
			wrote = append(wrote, string(b[:3]))
			return 3, ErrWouldBlock
		}
		wrote = append(wrote, string(b))
		return len(b), nil
	}})
	if start, err := q.Push(msg("hello ", "world")); err != nil || start {
		t.Fatalf("direct Push: start %v, %v; want no writer", start, err)
	}
	if len(wrote) != 1 || wrote[0] != "hello world" {
		t.Fatalf("direct writes %q, want one write of both parts", wrote)
	}
	expectLen(t, q, 0, 0)
	full = true
	if start, err := q.Push(msg("partial")); err != nil || !start {
		t.Fatalf("Push into a full socket: start %v, %v; want a writer for the rest", start, err)
	}
	q.Push(msg("+later")) // queued behind the rest while the writer role is taken
	w, r := tcpPair(t)
	got := collect(r)
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if out := string(recv(t, got, "the rest")); out != "tial+later" {
		t.Fatalf("writer wrote %q, want the unwritten rest first", out)
	}
	// Held batches and queued bytes are never bypassed.
	q2 := newQueue(10, 1000)
	direct := 0
	q2.SetDirect(funcDirect{t: t, try: func(b []byte) (int, error) { direct++; return len(b), nil }})
	q2.Hold()
	q2.Push(msg("held"))
	if direct != 0 {
		t.Fatal("a held queue wrote directly")
	}
}

// TestRelease_VectoredWriteTakesEveryChunkAtOnce: with SetDirect, a held batch that
// spans several chunks leaves in one vectored write; what that write did not take (it
// stopped inside the second chunk) goes to a writer, in order.
func TestRelease_VectoredWriteTakesEveryChunkAtOnce(t *testing.T) {
	q := newQueue(100, 1<<20)
	q.Hold()
	var want []byte
	for i := range 5 {
		m := bytes.Repeat([]byte{'a' + byte(i)}, chunkSize/2+100) // five messages: four chunks
		want = append(want, m...)
		q.Push(msg(string(m)))
	}
	calls, chunks := 0, 0
	var first []byte
	q.SetDirect(funcDirect{t: t, vec: func(bufs [][]byte) (int64, error) {
		calls++
		chunks = len(bufs)
		n := len(bufs[0]) + 10 // into the second chunk
		first = append(append(first, bufs[0]...), bufs[1][:10]...)
		return int64(n), ErrWouldBlock
	}})
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || chunks < 3 {
		t.Fatalf("%d vectored writes of %d chunks; want 1 of them all", calls, chunks)
	}
	if n := q.starts.Load(); n != 1 {
		t.Fatalf("%d writers started, want 1 for the rest", n)
	}
	if out := append(first, drainAll(t, q)...); !bytes.Equal(out, want) {
		t.Fatalf("%d bytes arrived (%d first), want the %d queued in order", len(out), len(first), len(want))
	}
}

// funcDirect is a Direct made of funcs; the test fails if one it was not given is used.
type funcDirect struct {
	t   *testing.T
	try func([]byte) (int, error)
	vec func([][]byte) (int64, error)
}

func (d funcDirect) Try(b []byte) (int, error) {
	if d.try == nil {
		d.t.Error("single write used")
		return 0, nil
	}
	return d.try(b)
}

func (d funcDirect) TryVec(bufs [][]byte) (int64, error) {
	if d.vec == nil {
		d.t.Error("vectored write used")
		return 0, nil
	}
	return d.vec(bufs)
}

// drainAll runs the writer's Drain of q over a TCP pair and returns what arrived.
func drainAll(t *testing.T, q *testQueue) []byte {
	t.Helper()
	w, r := tcpPair(t)
	got := collect(r)
	if err := q.Drain(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return recv(t, got, "the rest")
}
