package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// A publish reaches every member on every node, once, in publish order per
// publisher, except the one left out; a node subscribes only to rooms it has members
// in; a closed session leaves its rooms everywhere.
func TestRooms_AcrossNodes(t *testing.T) {
	ns := startNATS(t)
	nodes := []*Node[struct{}]{
		newNode(t, testConfig(ns.ClientURL(), "a")),
		newNode(t, testConfig(ns.ClientURL(), "b")),
		newNode(t, testConfig(ns.ClientURL(), "c")),
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	// Two members on a, one on b, none on c; c2 on c is in another room.
	a1, a2, b1, c1 := dial(t, a), dial(t, a), dial(t, b), dial(t, c)
	for _, cl := range []*client{a1, a2, b1} {
		if got := cl.do("JOIN lobby"); got != "OK" {
			t.Fatal(got)
		}
	}
	if got := c1.do("JOIN other"); got != "OK" {
		t.Fatal(got)
	}
	subscribed := func(n *Node[struct{}], room string) bool {
		n.mu.RLock()
		defer n.mu.RUnlock()
		r := n.rooms[room]
		return r != nil && r.sub != nil && r.sub.IsValid()
	}
	if !subscribed(a, "lobby") || !subscribed(b, "lobby") || subscribed(c, "lobby") || !subscribed(c, "other") || subscribed(a, "other") {
		t.Fatal("a node is subscribed to a room without local members, or not to one with")
	}
	// c, with no member, publishes 100 messages; a and b publish 100 each, leaving out
	// their own sender. Every member gets each message once, in order per publisher.
	const each = 100
	for i := range each {
		if err := c.Publish("lobby", fmt.Appendf(nil, "c %d\r\n", i), ""); err != nil {
			t.Fatal(err)
		}
		if err := a.Publish("lobby", fmt.Appendf(nil, "a %d\r\n", i), a1.id); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish("lobby", fmt.Appendf(nil, "b %d\r\n", i), b1.id); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(cl *client, from ...string) {
		t.Helper()
		next := map[string]int{}
		for range len(from) * each {
			var who string
			var i int
			line := cl.line()
			if _, err := fmt.Sscanf(line, "%s %d", &who, &i); err != nil || !slices.Contains(from, who) || i != next[who] {
				t.Fatalf("%s got %q; want publisher in %v, message %d", cl.id, line, from, next[who])
			}
			next[who]++
		}
		cl.silent(100 * time.Millisecond)
	}
	expect(a1, "c", "b")      // a1 was left out of a's
	expect(a2, "c", "a", "b") // everything
	expect(b1, "c", "a")
	c1.silent(50 * time.Millisecond)

	ctx := context.Background()
	rooms, err := c.Rooms(ctx)
	if err != nil || !slices.Equal(rooms, []RoomInfo{{"lobby", 3}, {"other", 1}}) {
		t.Fatalf("Rooms = %v, %v", rooms, err)
	}
	members, err := c.Members(ctx, "lobby")
	if err != nil || len(members) != 3 {
		t.Fatalf("Members = %v, %v", members, err)
	}
	// Leaving and closing: b's only member leaves, so b unsubscribes; a2 closes.
	if got := b1.do("LEAVE lobby"); got != "OK" {
		t.Fatal(got)
	}
	if subscribed(b, "lobby") {
		t.Fatal("b still subscribed after its last member left")
	}
	a2.conn.Close()
	eventually(t, 3*time.Second, "a2 left", func() bool {
		m, _ := c.Members(ctx, "lobby")
		return len(m) == 1 && m[0].SessionID == a1.id
	})
	if err := b.Publish("lobby", []byte("after\r\n"), ""); err != nil {
		t.Fatal(err)
	}
	if got := a1.line(); got != "after" {
		t.Fatalf("got %q", got)
	}
	b1.silent(50 * time.Millisecond)
	// The room's member on a leaving too: nobody holds it any more.
	a1.conn.Close()
	eventually(t, 3*time.Second, "lobby gone", func() bool {
		r, _ := c.Rooms(ctx)
		return len(r) == 1 && r[0].Name == "other"
	})
	if subscribed(a, "lobby") {
		t.Fatal("a still subscribed to an empty room")
	}
}

// Room names of any bytes become subject tokens that do not clash.
func TestRooms_NamesAreTokens(t *testing.T) {
	for _, tc := range []struct{ name, tok string }{
		{"lobby", "lobby"},
		{"a-b_c", "a-b_c"},
		{"a.b", "=YS5i"},
		{"*", "=Kg"},
		{"=Kg", "=PUtn"},
		{"zoë", "=em_Dqw"},
	} {
		if got := token(tc.name); got != tc.tok {
			t.Errorf("token(%q) = %q, want %q", tc.name, got, tc.tok)
		}
	}
}
