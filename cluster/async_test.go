package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/supersocket-go/supersocket"
)

// verdicts collects SendToAsync's verdicts and fails the test when a call's done runs
// twice.
type verdicts struct {
	t     testing.TB
	mu    sync.Mutex
	errs  map[int]error
	calls atomic.Int64
	ch    chan int // each call's index, as its verdict comes
}

func newVerdicts(t testing.TB, n int) *verdicts {
	return &verdicts{t: t, errs: make(map[int]error), ch: make(chan int, n)}
}

// done is call i's callback.
func (v *verdicts) done(i int) func(error) {
	return func(err error) {
		v.calls.Add(1)
		v.mu.Lock()
		if _, twice := v.errs[i]; twice {
			v.t.Errorf("call %d: done called twice (%v)", i, err)
		}
		v.errs[i] = err
		v.mu.Unlock()
		v.ch <- i
	}
}

// wait waits for call i's verdict among the next ones, failing after d.
func (v *verdicts) wait(i int, d time.Duration) error {
	v.t.Helper()
	timeout := time.After(d)
	for {
		v.mu.Lock()
		err, ok := v.errs[i]
		v.mu.Unlock()
		if ok {
			return err
		}
		select {
		case <-v.ch:
		case <-timeout:
			v.t.Fatalf("call %d: no verdict within %v", i, d)
		}
	}
}

// asyncVerdict makes one SendToAsync call and waits for its verdict; inline reports
// whether done ran before SendToAsync returned.
func asyncVerdict(t testing.TB, n *Node[struct{}], ctx context.Context, id string, msg []byte) (inline bool, took time.Duration, err error) {
	t.Helper()
	got := make(chan error, 2)
	start := time.Now()
	n.SendToAsync(ctx, id, msg, func(err error) { got <- err })
	inline = len(got) == 1
	select {
	case err = <-got:
	case <-time.After(10 * time.Second):
		t.Fatalf("SendToAsync(%q): no verdict", id)
	}
	took = time.Since(start)
	select {
	case err2 := <-got:
		t.Fatalf("SendToAsync(%q): done called twice (%v, %v)", id, err, err2)
	case <-time.After(20 * time.Millisecond):
	}
	return inline, took, err
}

// SendToAsync gives SendTo's verdicts: delivered (local and remote), no session (a
// live node's, this node's, an invalid ID), node gone (fast), too large.
func TestSendToAsync_Verdicts(t *testing.T) {
	a, b := twoNodes(t)
	ca, cb := dial(t, a), dial(t, b)
	ctx := ctxT(t)

	inline, _, err := asyncVerdict(t, a, ctx, ca.id, []byte("local\r\n"))
	if err != nil || !inline {
		t.Fatalf("local: %v, inline %v; want nil, given at once", err, inline)
	}
	if got := ca.line(); got != "local" {
		t.Fatal(got)
	}
	if _, _, err := asyncVerdict(t, a, ctx, cb.id, []byte("remote\r\n")); err != nil {
		t.Fatalf("remote: %v", err)
	}
	if got := cb.line(); got != "remote" {
		t.Fatal(got)
	}

	cases := []struct {
		id   string
		gone bool
	}{
		{"b-" + b.inc + "-999999", false}, // a live node without that session
		{"zz-1-1", true},                  // no such node
		{"a-0-1", false},                  // this node, no such session
		{"nonode", false},                 // not a session ID
	}
	for _, tc := range cases {
		_, took, err := asyncVerdict(t, a, ctx, tc.id, []byte("x\r\n"))
		if !errors.Is(err, ErrNoSession) || errors.Is(err, ErrNodeGone) != tc.gone {
			t.Errorf("SendToAsync(%q) = %v; want ErrNoSession, ErrNodeGone %v", tc.id, err, tc.gone)
		}
		if !strings.Contains(err.Error(), tc.id) && !tc.gone {
			t.Errorf("SendToAsync(%q) = %v; want the ID in the error", tc.id, err)
		}
		if took > time.Second {
			t.Errorf("SendToAsync(%q) took %v; want under 1 s", tc.id, took)
		}
	}

	huge := make([]byte, 2<<20)
	if inline, _, err := asyncVerdict(t, a, ctx, cb.id, huge); !errors.Is(err, nats.ErrMaxPayload) || !inline {
		t.Fatalf("too large: %v, inline %v", err, inline)
	}

	// A node that stops: its sessions are gone at once.
	b.Stop()
	_, took, err := asyncVerdict(t, a, ctx, cb.id, []byte("x\r\n"))
	if !errors.Is(err, ErrNodeGone) || !errors.Is(err, ErrNoSession) || took > time.Second {
		t.Fatalf("a stopped node's session: %v after %v; want ErrNodeGone and ErrNoSession within 1 s", err, took)
	}
	if st := a.ClusterStats(); st.RemoteSendErrors != 4 || st.RemoteSends != 5 {
		t.Fatalf("stats %+v: want 5 remote sends, 4 failed", st)
	}
}

// Many calls in flight from one goroutine (and a few): each gets exactly one verdict,
// and every message arrives, in the order sent.
func TestSendToAsync_OrderManyInFlight(t *testing.T) {
	a, b := twoNodes(t)
	c := dial(t, b)
	ctx := ctxT(t)
	const workers, each = 4, 3000
	v := newVerdicts(t, workers*each)
	for w := range workers {
		go func() {
			for i := range each {
				a.SendToAsync(ctx, c.id, fmt.Appendf(nil, "w%d-%d\r\n", w, i), v.done(w*each+i))
			}
		}()
	}
	next := make([]int, workers)
	for range workers * each {
		var w, i int
		if _, err := fmt.Sscanf(c.line(), "w%d-%d", &w, &i); err != nil || i != next[w] {
			t.Fatalf("worker %d: message %d out of order (want %d): %v", w, i, next[w], err)
		}
		next[w]++
	}
	eventually(t, 5*time.Second, "every verdict", func() bool { return v.calls.Load() == workers*each })
	time.Sleep(50 * time.Millisecond)
	if got := v.calls.Load(); got != workers*each {
		t.Fatalf("done called %d times for %d calls", got, workers*each)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, err := range v.errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	c.silent(100 * time.Millisecond)
}

// With the remote session's queue filling up, the verdicts tell the truth: every call
// whose verdict was nil was delivered, in order, and none refused with
// ErrSendQueueFull was.
func TestSendToAsync_QueueFullVerdictsMatchDelivery(t *testing.T) {
	a, b := twoNodes(t, func(c *supersocket.Config) {
		c.SendQueueSize, c.SendQueueBytes = 16, 16<<10
		c.SocketWriteBuffer = 4 << 10
	})
	c := dial(t, b) // does not read until the senders are done
	c.conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	const workers, each, window = 8, 400, 64
	var ok, full, calls atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := ctxT(t)
			slots := make(chan struct{}, window)
			done := func(err error) {
				calls.Add(1)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, supersocket.ErrSendQueueFull):
					full.Add(1)
				default:
					t.Errorf("SendToAsync: %v", err)
				}
				<-slots
			}
			for i := range each {
				slots <- struct{}{}
				a.SendToAsync(ctx, c.id, fmt.Appendf(nil, "w%d-%d %s\r\n", w, i, strings.Repeat("x", 500)), done)
			}
			for range window { // every verdict in
				slots <- struct{}{}
			}
		})
	}
	wg.Wait()
	if calls.Load() != workers*each {
		t.Fatalf("done called %d times for %d calls", calls.Load(), workers*each)
	}
	if full.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("%d delivered, %d refused: want both", ok.Load(), full.Load())
	}
	c.expectInOrderPerWorker(workers, int(ok.Load()))
}

// silentNode subscribes to a node's inbox that never answers: calls to its sessions
// wait.
func silentNode(t *testing.T, url, node string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe(DefaultPrefix+".node."+node+".in", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Calls waiting for a node that does not answer end with their context: cancelled,
// past a deadline, or past RequestTimeout without one; calls past MaxInFlight wait for
// room, and fail when their context ends first.
func TestSendToAsync_ContextAndInFlightBound(t *testing.T) {
	ns := startNATS(t)
	cfg := testConfig(ns.ClientURL(), "a")
	cfg.MaxInFlight = 4
	cfg.RequestTimeout = 500 * time.Millisecond
	cfg.NodeTimeout = 5 * time.Second // no ErrNodeGone for the silent node meanwhile
	a := newNode(t, cfg)
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	cb := dial(t, b)
	silentNode(t, ns.ClientURL(), "zz")

	// Four calls fill the bound; a fifth waits for room until its deadline.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := newVerdicts(t, 16)
	for i := range 4 {
		a.SendToAsync(ctx, "zz-1-1", []byte("x\r\n"), v.done(i))
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	a.SendToAsync(short, cb.id, []byte("x\r\n"), v.done(4))
	if err := v.wait(4, time.Second); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call past MaxInFlight: %v; want ErrTimeout, DeadlineExceeded", err)
	}
	if took := time.Since(start); took < 90*time.Millisecond || took > time.Second {
		t.Fatalf("a call past MaxInFlight failed after %v; want its deadline, 100 ms", took)
	}
	// Cancelling the context ends the four at once, in call order; room is back.
	start = time.Now()
	cancel()
	for i := range 4 {
		if err := v.wait(i, time.Second); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
			t.Fatalf("call %d after cancel: %v", i, err)
		}
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("cancel took %v", took)
	}
	if _, _, err := asyncVerdict(t, a, ctxT(t), cb.id, []byte("room\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := cb.line(); got != "room" {
		t.Fatal(got)
	}
	// Without a deadline: RequestTimeout, checked every heartbeat.
	_, took, err := asyncVerdict(t, a, context.Background(), "zz-1-2", []byte("x\r\n"))
	if !errors.Is(err, ErrTimeout) || took < 500*time.Millisecond || took > 2*time.Second {
		t.Fatalf("no deadline: %v after %v; want ErrTimeout after RequestTimeout (500 ms)", err, took)
	}
	// A context that has ended: at once.
	inline, _, err := asyncVerdict(t, a, ctx, cb.id, []byte("x\r\n"))
	if !errors.Is(err, context.Canceled) || !inline {
		t.Fatalf("ended context: %v, inline %v", err, inline)
	}
	l := a.link.Load()
	eventually(t, 2*time.Second, "the idle context watches stopped", func() bool {
		l.pending.mu.Lock()
		defer l.pending.mu.Unlock()
		return len(l.pending.watches) == 0
	})
	if n := l.pending.async.Load(); n != 0 {
		t.Fatalf("%d calls still counted in flight", n)
	}
}

// Calls in flight when NATS goes away fail with ErrDisconnected; calls made then fail
// at once; local sessions are still served.
func TestSendToAsync_Disconnected(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	ca := dial(t, a)
	silentNode(t, ns.ClientURL(), "zz")
	ctx := ctxT(t)
	v := newVerdicts(t, 100)
	for i := range 50 {
		a.SendToAsync(ctx, "zz-1-1", []byte("x\r\n"), v.done(i))
	}
	time.Sleep(50 * time.Millisecond) // published
	start := time.Now()
	ns.Shutdown()
	for i := range 50 {
		if err := v.wait(i, 5*time.Second); !errors.Is(err, ErrDisconnected) {
			t.Fatalf("call %d in flight: %v; want ErrDisconnected", i, err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("in-flight calls failed after %v", took)
	}
	eventually(t, 5*time.Second, "disconnected", func() bool { return !a.ClusterStats().Connected })
	if inline, _, err := asyncVerdict(t, a, ctx, "b-1-1", []byte("x\r\n")); !errors.Is(err, ErrDisconnected) || !inline {
		t.Fatalf("after the disconnect: %v, inline %v", err, inline)
	}
	if _, _, err := asyncVerdict(t, a, ctx, ca.id, []byte("still here\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := ca.line(); got != "still here" {
		t.Fatal(got)
	}
	if got := v.calls.Load(); got != 50 {
		t.Fatalf("done called %d times for 50 calls", got)
	}
}

// SendTo to a node that does not answer ends with its context (cancelled, past its
// deadline) or RequestTimeout, as SendToAsync does.
func TestSendTo_ContextEnds(t *testing.T) {
	ns := startNATS(t)
	cfg := testConfig(ns.ClientURL(), "a")
	cfg.RequestTimeout = 300 * time.Millisecond
	cfg.NodeTimeout = 5 * time.Second
	a := newNode(t, cfg)
	silentNode(t, ns.ClientURL(), "zz")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if err := a.SendTo(ctx, "zz-1-1", []byte("x\r\n")); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if took := time.Since(start); took < 90*time.Millisecond || took > 250*time.Millisecond {
		t.Fatalf("cancelled after %v; want 100 ms", took)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if err := a.SendTo(short, "zz-1-1", []byte("x\r\n")); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	start = time.Now()
	if err := a.SendTo(context.Background(), "zz-1-1", []byte("x\r\n")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("no deadline: %v", err)
	}
	if took := time.Since(start); took < 290*time.Millisecond || took > time.Second {
		t.Fatalf("no deadline: after %v; want RequestTimeout, 300 ms", took)
	}
}

// A context per call: their watches do not pile up (at most maxIdleWatches kept once
// their calls have their verdicts), and none is left once the node has stopped.
func TestSendToAsync_ContextPerCall(t *testing.T) {
	a, b := twoNodes(t)
	c := dial(t, b)
	const calls = 2 * maxIdleWatches
	v := newVerdicts(t, calls)
	var cancels []context.CancelFunc
	for i := range calls {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		a.SendToAsync(ctx, c.id, fmt.Appendf(nil, "m%d\r\n", i), v.done(i))
	}
	for i := range calls {
		if err := v.wait(i, 5*time.Second); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got, want := c.line(), fmt.Sprintf("m%d", i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	l := a.link.Load()
	l.pending.mu.Lock()
	kept, idle := len(l.pending.watches), l.pending.idleWatches
	l.pending.mu.Unlock()
	if kept > maxIdleWatches || idle != kept {
		t.Fatalf("%d watches kept (%d idle) after %d calls of their own contexts; want at most %d, all idle", kept, idle, calls, maxIdleWatches)
	}
	for _, cancel := range cancels {
		cancel()
	}
	if got := v.calls.Load(); got != calls {
		t.Fatalf("done called %d times for %d calls", got, calls)
	}
	a.Stop()
	l.pending.mu.Lock()
	defer l.pending.mu.Unlock()
	if len(l.pending.watches) != 0 || l.pending.idleWatches != 0 {
		t.Fatalf("%d watches left after Stop", len(l.pending.watches))
	}
}
