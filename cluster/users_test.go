package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binding a user already bound on another node kicks the older session: it is told
// (Kicked) and closed; the user is then reachable on the new one.
func TestBind_KicksOlderSessionAnywhere(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	ca, cb, ca2 := dial(t, a), dial(t, b), dial(t, a)
	ctx := ctxT(t)
	if got := ca.do("BIND ada"); got != "OK" {
		t.Fatalf("BIND: %q", got)
	}
	if sid, err := b.LookupUser(ctx, "ada"); err != nil || sid != ca.id {
		t.Fatalf("LookupUser from b = %q, %v; want %q", sid, err, ca.id)
	}
	if err := b.SendToUser(ctx, "ada", []byte("hello ada\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := ca.line(); got != "hello ada" {
		t.Fatalf("SendToUser: got %q", got)
	}
	if got := cb.do("BIND ada"); got != "OK" {
		t.Fatalf("second BIND: %q", got)
	}
	if rest := ca.expectClosed(); rest != "KICKED ada\r\n" {
		t.Fatalf("the older session got %q before closing; want KICKED ada", rest)
	}
	if sid, err := a.LookupUser(ctx, "ada"); err != nil || sid != cb.id {
		t.Fatalf("LookupUser = %q, %v; want the new session %q", sid, err, cb.id)
	}
	if err := a.SendToUser(ctx, "ada", []byte("moved\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := cb.line(); got != "moved" {
		t.Fatalf("got %q", got)
	}
	// The same node: a second session of the same user kicks the first, locally.
	if got := ca2.do("BIND bob"); got != "OK" {
		t.Fatal(got)
	}
	ca3 := dial(t, a)
	if got := ca3.do("BIND bob"); got != "OK" {
		t.Fatal(got)
	}
	if rest := ca2.expectClosed(); rest != "KICKED bob\r\n" {
		t.Fatalf("got %q", rest)
	}
	// KickUser from another node; then the user is bound nowhere.
	if err := b.KickUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if rest := ca3.expectClosed(); rest != "KICKED bob\r\n" {
		t.Fatalf("got %q", rest)
	}
	eventually(t, 3*time.Second, "bob unbound", func() bool {
		_, err := b.LookupUser(ctx, "bob")
		return errors.Is(err, ErrNoUser)
	})
	if err := b.SendToUser(ctx, "bob", []byte("x")); !errors.Is(err, ErrNoUser) {
		t.Fatalf("SendToUser to nobody: %v", err)
	}
	if err := b.KickUser(ctx, "nobody"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("KickUser(nobody) = %v", err)
	}
	if st := a.ClusterStats(); st.Kicks == 0 {
		t.Fatalf("kicks not counted: %+v", st)
	}
}

// A closed session unbinds its user everywhere; names of any bytes work.
func TestBind_CloseUnbindsAndAnyName(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	c := dial(t, a)
	name := "zoë.user@example.com"
	if got := c.do("BIND " + name); got != "OK" {
		t.Fatal(got)
	}
	ctx := ctxT(t)
	if sid, err := b.LookupUser(ctx, name); err != nil || sid != c.id {
		t.Fatalf("LookupUser(%q) = %q, %v", name, sid, err)
	}
	c.conn.Close()
	eventually(t, 3*time.Second, "unbound after close", func() bool {
		_, err := b.LookupUser(ctx, name)
		return errors.Is(err, ErrNoUser)
	})
	if err := a.Bind(ctx, nil, "x"); !errors.Is(err, ErrNotLocal) {
		t.Fatalf("Bind(nil) = %v", err)
	}
	if err := a.Bind(ctx, nil, ""); !errors.Is(err, ErrBadName) {
		t.Fatalf("Bind empty = %v", err)
	}
	if err := a.Bind(ctx, nil, strings.Repeat("x", MaxNameLen+1)); !errors.Is(err, ErrBadName) {
		t.Fatalf("Bind long = %v", err)
	}
}

// Concurrent logins of one user on two nodes end, every round, with exactly one bound
// session, whichever wins: the binding names a live session, the other was kicked.
func TestBind_ConcurrentLoginsRace(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	wins := map[string]int{}
	for round := range rounds {
		ca, cb := dial(t, a), dial(t, b)
		user := "racer"
		var wg sync.WaitGroup
		replies := make([]string, 2)
		for i, c := range []*client{ca, cb} {
			wg.Go(func() { replies[i] = c.do("BIND " + user) })
		}
		wg.Wait()
		if replies[0] != "OK" && replies[1] != "OK" {
			t.Fatalf("round %d: neither bind succeeded: %q", round, replies)
		}
		sid, err := a.LookupUser(ctxT(t), user)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		winner, loser := ca, cb
		if sid == cb.id {
			winner, loser = cb, ca
		} else if sid != ca.id {
			t.Fatalf("round %d: bound to %q, neither contender", round, sid)
		}
		wins[winner.id[:1]]++
		// The loser was kicked and closed; the winner is live and bound.
		// (The kick may reach the loser before the OK of its own BIND, which then is
		// not sent: the session is closing.)
		reply := replies[0]
		if loser == cb {
			reply = replies[1]
		}
		if rest := reply + "\r\n" + loser.expectClosed(); !strings.Contains(rest, "KICKED racer\r\n") {
			t.Fatalf("round %d: loser got %q", round, rest)
		}
		if got := winner.do("ID"); got != winner.id {
			t.Fatalf("round %d: winner not live: %q", round, got)
		}
		owner := a
		if winner == cb {
			owner = b
		}
		bound := 0
		for _, n := range []*Node[struct{}]{a, b} {
			n.mu.RLock()
			if m := n.users[user]; m != nil {
				bound++
				if n != owner || m.s.ID() != winner.id {
					t.Errorf("round %d: node %s holds %s bound", round, n.ID(), m.s.ID())
				}
			}
			n.mu.RUnlock()
		}
		if bound != 1 {
			t.Fatalf("round %d: %d sessions bound locally, want 1", round, bound)
		}
		winner.conn.Close()
		eventually(t, 3*time.Second, "unbound", func() bool {
			_, err := a.LookupUser(ctxT(t), user)
			return errors.Is(err, ErrNoUser)
		})
	}
	t.Logf("%d rounds: wins by node %v", rounds, wins)
}

// A crashed node's users expire within UserTTL; its sessions are gone at once, and a
// new login of its user takes over at once.
func TestBind_CrashedNodeUsersExpire(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	ctx := ctxT(t)
	ca := dial(t, a)
	ca.do("BIND carol")
	ca2 := dial(t, a)
	ca2.do("BIND dave")
	// Refreshes keep a live binding beyond the TTL.
	time.Sleep(2 * a.cfg.UserTTL)
	if sid, err := b.LookupUser(ctx, "carol"); err != nil || sid != ca.id {
		t.Fatalf("a live binding was lost after 2 TTLs: %q, %v", sid, err)
	}
	crashed := time.Now()
	a.crash()
	// A send racing the crash fails once NATS or the heartbeats tell; the next at once.
	start := time.Now()
	if err := b.SendTo(ctx, ca.id, []byte("x")); !errors.Is(err, ErrNodeGone) || time.Since(start) > b.cfg.NodeTimeout+time.Second {
		t.Fatalf("SendTo a crashed node's session: %v after %v", err, time.Since(start))
	}
	start = time.Now()
	if err := b.SendTo(ctx, ca.id, []byte("x")); !errors.Is(err, ErrNodeGone) || time.Since(start) > time.Second {
		t.Fatalf("SendTo a crashed node's session: %v after %v", err, time.Since(start))
	}
	if err := b.SendToUser(ctx, "carol", []byte("x")); !errors.Is(err, ErrNoUser) {
		t.Fatalf("SendToUser to a crashed node's user: %v", err)
	}
	// dave logs in again on b at once.
	cb := dial(t, b)
	if got := cb.do("BIND dave"); got != "OK" {
		t.Fatal(got)
	}
	// carol expires within the TTL (plus the bucket's expiry check).
	bound := b.cfg.UserTTL + time.Second
	eventually(t, bound, "carol expired", func() bool {
		_, err := b.LookupUser(ctx, "carol")
		return errors.Is(err, ErrNoUser)
	})
	t.Logf("carol expired %v after the crash (UserTTL %v)", time.Since(crashed).Round(time.Millisecond), b.cfg.UserTTL)
	eventually(t, 3*b.cfg.NodeTimeout, "a left the node list", func() bool { return len(b.Nodes()) == 1 })
	if sid, err := b.LookupUser(ctx, "dave"); err != nil || sid != cb.id {
		t.Fatalf("dave: %q, %v", sid, err)
	}
}

// Bind, SendToUser and KickUser without NATS fail at once with ErrDisconnected.
func TestUsers_DisconnectedFailsAtOnce(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	c := dial(t, a)
	ns.Shutdown()
	eventually(t, 5*time.Second, "disconnected", func() bool { return !a.ClusterStats().Connected })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if got := c.do("BIND eve"); !strings.Contains(got, ErrDisconnected.Error()) {
		t.Fatalf("BIND without NATS: %q", got)
	}
	if err := a.SendToUser(ctx, "eve", nil); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("SendToUser: %v", err)
	}
	if err := a.SendTo(ctx, "b-1-1", nil); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("SendTo: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("took %v", took)
	}
	// Local sessions keep working.
	if err := a.SendTo(ctx, c.id, []byte("still here\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := c.line(); got != "still here" {
		t.Fatal(got)
	}
}
