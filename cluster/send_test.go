package cluster

import (
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

// Session IDs name their node; SendTo reaches a session on any node, locally without
// NATS, and one sender's messages arrive in order.
func TestSendTo_LocalAndRemote(t *testing.T) {
	a, b := twoNodes(t)
	ca, cb := dial(t, a), dial(t, b)
	if node, _ := NodeOf(ca.id); node != "a" {
		t.Fatalf("session ID %q does not name node a", ca.id)
	}
	if node, _ := NodeOf(cb.id); node != "b" {
		t.Fatalf("session ID %q does not name node b", cb.id)
	}
	ctx := ctxT(t)
	if err := a.SendTo(ctx, ca.id, []byte("local\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := ca.line(); got != "local" {
		t.Fatalf("local send: got %q", got)
	}
	const n = 2000
	for i := range n {
		if err := a.SendTo(ctx, cb.id, fmt.Appendf(nil, "m%d\r\n", i)); err != nil {
			t.Fatalf("remote send %d: %v", i, err)
		}
	}
	for i := range n {
		if got, want := cb.line(), fmt.Sprintf("m%d", i); got != want {
			t.Fatalf("remote send: got %q, want %q", got, want)
		}
	}
	st := a.ClusterStats()
	if st.LocalSends != 1 || st.RemoteSends != n || st.RemoteSendErrors != 0 {
		t.Fatalf("stats %+v: want 1 local send, %d remote, no errors", st, n)
	}
	if err := b.Close(ctx, ca.id, supersocket.CloseServerClosing); err != nil {
		t.Fatal(err)
	}
	ca.expectClosed()
}

// Sends from many goroutines at once are all acknowledged (batched) and delivered.
func TestSendTo_Concurrent(t *testing.T) {
	a, b := twoNodes(t)
	cb := dial(t, b)
	const workers, each = 16, 200
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				if err := a.SendTo(ctxT(t), cb.id, fmt.Appendf(nil, "w%d-%d\r\n", w, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	next := make([]int, workers)
	for range workers * each {
		var w, i int
		if _, err := fmt.Sscanf(cb.line(), "w%d-%d", &w, &i); err != nil || i != next[w] {
			t.Fatalf("worker %d: message %d out of order (want %d): %v", w, i, next[w], err)
		}
		next[w]++
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A session that does not exist, or whose node is gone, fails fast with a sentinel.
func TestSendTo_MissingFailsFast(t *testing.T) {
	a, b := twoNodes(t)
	cb := dial(t, b)
	ctx := ctxT(t)
	cases := []struct {
		id   string
		gone bool
	}{
		{"b-" + b.inc + "-999999", false}, // a live node without that session
		{cb.id[:len(cb.id)-1] + "x", false},
		{"zz-1-1", true}, // no such node
		{"a-0-1", false}, // this node, no such session
		{"nonode", false},
	}
	for _, tc := range cases {
		start := time.Now()
		err := a.SendTo(ctx, tc.id, []byte("x\r\n"))
		took := time.Since(start)
		if !errors.Is(err, ErrNoSession) || errors.Is(err, ErrNodeGone) != tc.gone {
			t.Errorf("SendTo(%q) = %v; want ErrNoSession, ErrNodeGone %v", tc.id, err, tc.gone)
		}
		if took > time.Second {
			t.Errorf("SendTo(%q) took %v; want under 1 s", tc.id, took)
		}
		if err := a.Close(ctx, tc.id, supersocket.CloseServerClosing); !errors.Is(err, ErrNoSession) {
			t.Errorf("Close(%q) = %v; want ErrNoSession", tc.id, err)
		}
	}
	// A node that stops: its sessions are gone at once.
	b.Stop()
	start := time.Now()
	if err := a.SendTo(ctx, cb.id, []byte("x\r\n")); !errors.Is(err, ErrNodeGone) || !errors.Is(err, ErrNoSession) {
		t.Fatalf("SendTo a stopped node's session = %v; want ErrNodeGone and ErrNoSession", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("took %v", took)
	}
}

// A full send queue on the remote session is reported, not waited for.
func TestSendTo_RemoteQueueFull(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b, err := New(testConfig(ns.ClientURL(), "b"), supersocket.Config{
		Listeners:      []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		SendQueueSize:  4,
		SendQueueBytes: 64,
		Logger:         quietLogger(),
	}, Handlers[struct{}]{Handlers: supersocket.Handlers[struct{}]{
		Request: func(s *session, r supersocket.Request) { s.Send([]byte(s.ID() + "\r\n")) },
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop() })
	c := dial(t, b) // never reads again
	big := make([]byte, 32<<10)
	var full error
	for range 2000 {
		if full = a.SendTo(ctxT(t), c.id, big); full != nil {
			break
		}
	}
	if !errors.Is(full, supersocket.ErrSendQueueFull) {
		t.Fatalf("SendTo a session that never reads: %v; want ErrSendQueueFull", full)
	}
}

// Post queues without waiting: its messages and SendTo's from one goroutine arrive in
// the order made; what the owner cannot deliver is counted there.
func TestPost_OrderAndUndelivered(t *testing.T) {
	a, b := twoNodes(t)
	ca, cb := dial(t, a), dial(t, b)
	ctx := ctxT(t)
	const n = 1000
	for i := range n {
		var err error
		if i%100 == 99 {
			err = a.SendTo(ctx, cb.id, fmt.Appendf(nil, "m%d\r\n", i))
		} else {
			err = a.Post(cb.id, fmt.Appendf(nil, "m%d\r\n", i))
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := range n {
		if got, want := cb.line(), fmt.Sprintf("m%d", i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// A local Post is a local SendTo: its error is the verdict.
	if err := a.Post(ca.id, []byte("local\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := ca.line(); got != "local" {
		t.Fatal(got)
	}
	if err := a.Post("a-0-1", []byte("x\r\n")); !errors.Is(err, ErrNoSession) {
		t.Fatalf("local Post to no session: %v", err)
	}
	// A remote one to no session is accepted here and counted by the owner.
	if err := a.Post("b-"+b.inc+"-999999", []byte("x\r\n")); err != nil {
		t.Fatalf("remote Post to no session: %v", err)
	}
	eventually(t, 5*time.Second, "the owner counts the lost post", func() bool {
		return b.ClusterStats().PostsUndelivered == 1
	})
	if st := a.ClusterStats(); st.RemotePosts != n-n/100+1 || st.RemoteSends != n/100 {
		t.Fatalf("stats %+v", st)
	}
}

// Calls to one node from many goroutines share NATS messages; the acknowledgements
// tell each caller the truth: every SendTo that returned nil was delivered, and none
// that returned ErrSendQueueFull was, even when the owner queued a batch's sends to
// the session together.
func TestSendTo_VerdictsMatchDelivery(t *testing.T) {
	a, b := twoNodes(t, func(c *supersocket.Config) {
		c.SendQueueSize, c.SendQueueBytes = 16, 16<<10
		c.SocketWriteBuffer = 4 << 10
	})
	c := dial(t, b) // does not read until the senders are done
	c.conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	const workers, each = 32, 200
	var ok, full atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				err := a.SendTo(ctxT(t), c.id, fmt.Appendf(nil, "w%d-%d %s\r\n", w, i, strings.Repeat("x", 500)))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, supersocket.ErrSendQueueFull):
					full.Add(1)
				default:
					t.Errorf("SendTo: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if full.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("%d delivered, %d refused: want both", ok.Load(), full.Load())
	}
	c.expectInOrderPerWorker(workers, int(ok.Load()))
}

// Messages larger than a batch, and batches split at their size bound, arrive whole and
// in order.
func TestSendTo_LargeMessages(t *testing.T) {
	a, b := twoNodes(t)
	c := dial(t, b)
	const workers, each = 4, 30
	sizes := []int{10 << 10, 40 << 10, 100}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				pad := strings.Repeat("y", sizes[(w+i)%len(sizes)])
				if err := a.SendTo(ctxT(t), c.id, fmt.Appendf(nil, "w%d-%d %s\r\n", w, i, pad)); err != nil {
					t.Errorf("SendTo: %v", err)
					return
				}
			}
		})
	}
	next := make([]int, workers)
	for range workers * each {
		var w, i int
		var pad string
		line := c.line()
		if _, err := fmt.Sscanf(line, "w%d-%d %s", &w, &i, &pad); err != nil || i != next[w] || len(pad) != sizes[(w+i)%len(sizes)] {
			t.Fatalf("worker %d: message %d (%d bytes), want %d: %v", w, i, len(pad), next[w], err)
		}
		next[w]++
	}
	wg.Wait()
}

// A message too large for one NATS message fails at once, naming the limit.
func TestSendTo_TooLarge(t *testing.T) {
	a, b := twoNodes(t)
	c := dial(t, b)
	huge := make([]byte, 2<<20)
	if err := a.SendTo(ctxT(t), c.id, huge); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("SendTo: %v", err)
	}
	if err := a.Post(c.id, huge); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("Post: %v", err)
	}
	if err := a.SendTo(ctxT(t), c.id, []byte("small\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := c.line(); got != "small" {
		t.Fatal(got)
	}
}

// The sends of a batch to a UDP session stay one datagram each.
func TestSendTo_UDPDatagrams(t *testing.T) {
	a, b := twoNodes(t, func(c *supersocket.Config) {
		c.Listeners = []supersocket.ListenerConfig{{Network: "udp", Addr: "127.0.0.1:0"}}
	})
	conn, err := net.Dial("udp", b.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("ID\r\n"))
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(buf[:n]))
	const msgs = 20
	for i := range msgs - 1 {
		if err := a.Post(id, fmt.Appendf(nil, "d%d\r\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SendTo(ctxT(t), id, fmt.Appendf(nil, "d%d\r\n", msgs-1)); err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if got, want := string(buf[:n]), fmt.Sprintf("d%d\r\n", i); got != want {
			t.Fatalf("datagram %d: %q, want %q", i, got, want)
		}
	}
}

// A call that waits while the pending ring comes round is moved to the overflow map,
// and still answered: by its acknowledgement, or by failAll.
func TestPendingRingOverflow(t *testing.T) {
	var p pendingCalls
	newWaiter := func() *waiter { return &waiter{done: make(chan error, 1), node: "b"} }
	ack := func(seq uint64, status byte) {
		t.Helper()
		if !p.acknowledge(append(appendUvarint(nil, seq), status)) {
			t.Fatal("malformed acknowledgement")
		}
	}
	slow := newWaiter()
	slowSeq, _ := p.add(slow)
	// Calls answered as they come, while slow waits.
	for range pendingRing + 10 {
		w := newWaiter()
		seq, _ := p.add(w)
		ack(seq, ackOK)
		if err := <-w.done; err != nil {
			t.Fatal(err)
		}
	}
	if len(p.overflow) != 1 {
		t.Fatalf("overflow holds %d waiters, want 1", len(p.overflow))
	}
	ack(slowSeq, ackQueueFull)
	if err := <-slow.done; err != supersocket.ErrSendQueueFull {
		t.Fatalf("slow call: %v, want ErrSendQueueFull", err)
	}
	if p.take(slowSeq) != nil || len(p.overflow) != 0 {
		t.Fatal("an answered call is still in the table")
	}
	// Displaced again, then failed with the rest.
	slow = newWaiter()
	slowSeq, _ = p.add(slow)
	var waiting []*waiter
	for range pendingRing {
		w := newWaiter()
		p.add(w)
		waiting = append(waiting, w)
	}
	p.failAll(ErrDisconnected)
	for _, w := range append(waiting, slow) {
		if err := <-w.done; err != ErrDisconnected {
			t.Fatalf("call %d: %v, want ErrDisconnected", w.seq, err)
		}
	}
	if p.take(slowSeq) != nil || len(p.overflow) != 0 {
		t.Fatal("failAll left calls in the table")
	}
}
