package cluster

import (
	"context"
	"fmt"
	"maps"
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

// joinAs binds a new client of n to user (unless "") and puts it in rooms.
func joinAs(t *testing.T, n *Node[struct{}], user string, rooms ...string) *client {
	t.Helper()
	c := dial(t, n)
	if user != "" {
		if got := c.do("BIND " + user); got != "OK" {
			t.Fatalf("BIND %s: %s", user, got)
		}
	}
	for _, room := range rooms {
		if got := c.do("JOIN " + room); got != "OK" {
			t.Fatalf("JOIN %s: %s", room, got)
		}
	}
	return c
}

// lines reads n lines and sorts them.
func lines(c *client, n int) []string {
	c.t.Helper()
	var out []string
	for range n {
		out = append(out, c.line())
	}
	slices.Sort(out)
	return out
}

// Each node knows the members the other nodes have in its rooms: those there before it
// subscribed, joins, users bound later, leaves, closed sessions. When a node crashes,
// every other node reports the crashed node's members of its rooms to its own members
// (NodeDown); a node that stops is not reported.
func TestRooms_NodeDown(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	c := newNode(t, testConfig(ns.ClientURL(), "c"))
	bob := joinAs(t, b, "bob", "lobby", "hall") // before a and c have members there
	ann := joinAs(t, a, "ann", "lobby")
	cat := joinAs(t, c, "cat", "lobby", "hall")
	cy := joinAs(t, b, "", "lobby")
	if got := cy.do("BIND cy"); got != "OK" { // bound after it joined
		t.Fatal(got)
	}
	joinAs(t, b, "dan", "lobby").do("LEAVE lobby")
	eve := joinAs(t, b, "eve", "lobby")
	eve.conn.Close()
	eventually(t, 5*time.Second, "b forgets eve", func() bool {
		b.mu.RLock()
		defer b.mu.RUnlock()
		return b.members[eve.id] == nil
	})
	// zed's join comes after eve's leave: once the others know zed, they have heard of
	// everything before.
	zed := joinAs(t, b, "zed", "lobby")
	for n, want := range map[*Node[struct{}]]map[string]string{
		a: {bob.id: "bob", cy.id: "cy", zed.id: "zed", cat.id: "cat"},
		c: {bob.id: "bob", cy.id: "cy", zed.id: "zed", ann.id: "ann"},
	} {
		eventually(t, 5*time.Second, n.ID()+" knows the others' members", func() bool {
			return maps.Equal(remoteMembers(n, "lobby"), want)
		})
	}
	if hall := remoteMembers(c, "hall"); len(hall) != 1 || hall[bob.id] != "bob" {
		t.Fatalf("c's view of hall: %v", hall)
	}

	b.crash()
	want := []string{"GONE lobby bob " + bob.id, "GONE lobby cy " + cy.id, "GONE lobby zed " + zed.id}
	if got := lines(ann, 3); !slices.Equal(got, want) {
		t.Fatalf("ann heard %q, want %q", got, want)
	}
	want = append(want, "GONE hall bob "+bob.id)
	slices.Sort(want)
	if got := lines(cat, 4); !slices.Equal(got, want) {
		t.Fatalf("cat heard %q, want %q", got, want)
	}
	if st := a.ClusterStats(); st.NodesDown != 1 || st.Nodes != 2 {
		t.Fatalf("a's stats after the crash: %+v", st)
	}
	if lobby := remoteMembers(a, "lobby"); len(lobby) != 1 || lobby[cat.id] != "cat" {
		t.Fatalf("a's view of lobby after the crash: %v", lobby)
	}

	// c stops: it says goodbye, and nothing is reported.
	c.Stop()
	eventually(t, 5*time.Second, "a drops c", func() bool { return len(a.Nodes()) == 1 })
	ann.silent(3 * a.cfg.NodeTimeout)
	if st := a.ClusterStats(); st.NodesDown != 1 {
		t.Fatalf("a reported a stopped node down: %+v", st)
	}
}

// A node that restarts before NodeTimeout: its previous life is reported down as soon
// as the new one is heard from.
func TestRooms_NodeRestartReported(t *testing.T) {
	ns := startNATS(t)
	slow := func(id string) Config {
		cfg := testConfig(ns.ClientURL(), id)
		cfg.NodeTimeout = time.Minute
		return cfg
	}
	a := newNode(t, slow("a"))
	b := newNode(t, slow("b"))
	ann := joinAs(t, a, "ann", "lobby")
	bob := joinAs(t, b, "bob", "lobby")
	eventually(t, 5*time.Second, "a knows bob", func() bool { return remoteMembers(a, "lobby")[bob.id] == "bob" })
	b.crash()
	start := time.Now()
	newNode(t, slow("b"))
	if got := ann.line(); got != "GONE lobby bob "+bob.id {
		t.Fatalf("ann heard %q", got)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("reported after %v", took)
	}
}
