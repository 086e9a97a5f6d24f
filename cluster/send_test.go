package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// Session IDs name their node; SendTo reaches a session on any node, locally without
// NATS, and one sender's messages arrive in order.
func TestSendTo_LocalAndRemote(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
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
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
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
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
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
