package supersocket

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// tag is a session's name, set by its handler and read by the test goroutine, so it is
// synchronised (Data's contract leaves that to the application).
type tag struct{ v atomic.Value }

func (t *tag) set(s string) { t.v.Store(s) }

func (t *tag) get() string {
	s, _ := t.v.Load().(string)
	return s
}

// registryServer starts a server whose Connected handler reports each session; a
// "NAME x" request tags its session x.
func registryServer(t *testing.T) (*Server[tag], chan *Session[tag], chan closeEvent) {
	t.Helper()
	sessions := make(chan *Session[tag], 32)
	closed := make(chan closeEvent, 32)
	srv := startServer(t, Config{}, Handlers[tag]{
		Connected: sessionsInto(sessions),
		Request: func(s *Session[tag], r Request) {
			if r.Key == "NAME" {
				s.Data().set(string(r.Body))
			}
			s.Send(r.Frame)
		},
		Closed: closedInto[tag](closed),
	})
	return srv, sessions, closed
}

func TestRegistry_SessionFindsLiveNotClosed(t *testing.T) {
	srv, sessions, _ := registryServer(t)
	c := dial(t, srv)
	s := recv(t, sessions, "the session")
	got, ok := srv.Session(s.ID())
	if !ok || got != s {
		t.Fatalf("Session(%q) = %p, %v; want the live session %p", s.ID(), got, ok, s)
	}
	if _, ok := srv.Session("no-such-id"); ok {
		t.Errorf("Session found an unknown ID")
	}
	c.Close()
	recv(t, s.Done(), "Done")
	if got, ok := srv.Session(s.ID()); ok || got != nil {
		t.Errorf("Session(%q) after close = %p, %v; want nil, false", s.ID(), got, ok)
	}
}

func TestRegistry_SessionCount(t *testing.T) {
	srv, sessions, closed := registryServer(t)
	if n := srv.SessionCount(); n != 0 {
		t.Fatalf("SessionCount = %d before any client", n)
	}
	var clients []*client
	for i := 1; i <= 5; i++ {
		clients = append(clients, dial(t, srv))
		recv(t, sessions, "Connected")
		if n := srv.SessionCount(); n != i {
			t.Errorf("SessionCount = %d, want %d", n, i)
		}
	}
	for i, c := range clients {
		c.Close()
		recv(t, closed, "Closed")
		// Closed runs after the session has left the count.
		if n, want := srv.SessionCount(), len(clients)-i-1; n != want {
			t.Errorf("SessionCount = %d, want %d", n, want)
		}
		if n := srv.Stats().Sessions; n != int64(len(clients)-i-1) {
			t.Errorf("Stats.Sessions = %d", n)
		}
	}
}

func TestRegistry_SessionsIteratesAllAndAllowsClosingInTheLoop(t *testing.T) {
	srv, sessions, closed := registryServer(t)
	const n = 6
	want := map[string]bool{}
	for i := range n {
		c := dial(t, srv)
		c.send(fmt.Sprintf("NAME c%d\r\n", i))
		c.expectLine(fmt.Sprintf("NAME c%d\r\n", i))
		want[recv(t, sessions, "Connected").ID()] = true
	}
	seen := map[string]bool{}
	for s := range srv.Sessions() {
		if seen[s.ID()] {
			t.Errorf("session %s yielded twice", s.ID())
		}
		seen[s.ID()] = true
		if name := s.Data().get(); !strings.HasPrefix(name, "c") {
			t.Errorf("session %s has Data %q", s.ID(), name)
		}
		// Closing, and looking sessions up, inside the loop must not deadlock.
		if _, ok := srv.Session(s.ID()); !ok {
			t.Errorf("Session(%s) not found inside the loop", s.ID())
		}
		if len(seen)%2 == 0 {
			s.Close(CloseServerClosing)
		}
	}
	if len(seen) != n {
		t.Fatalf("Sessions yielded %d sessions, want %d", len(seen), n)
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("session %s not yielded", id)
		}
	}
	for range n / 2 {
		if ev := recv(t, closed, "Closed"); ev.reason != CloseServerClosing {
			t.Errorf("reason %v", ev.reason)
		}
	}
	// Breaking out early stops the iteration.
	count := 0
	for range srv.Sessions() {
		count++
		break
	}
	if count != 1 {
		t.Errorf("iteration went on after break")
	}
	eventually(t, "the closed sessions to leave", func() bool { return srv.SessionCount() == n/2 })
	count = 0
	for range srv.Sessions() {
		count++
	}
	if count != n/2 {
		t.Errorf("Sessions yields %d after closing %d of %d", count, n/2, n)
	}
}

func TestBroadcast_ReachesEverySessionAndMatchFilters(t *testing.T) {
	srv, sessions, _ := registryServer(t)
	names := []string{"red", "green", "blue", "red2"}
	var clients []*client
	for _, name := range names {
		c := dial(t, srv)
		c.send("NAME " + name + "\r\n")
		c.expectLine("NAME " + name + "\r\n")
		recv(t, sessions, "Connected")
		clients = append(clients, c)
	}
	if n := srv.Broadcast([]byte("ALL\n"), nil); n != len(names) {
		t.Errorf("Broadcast to all reached %d, want %d", n, len(names))
	}
	n := srv.Broadcast([]byte("REDS\n"), func(s *Session[tag]) bool { return strings.HasPrefix(s.Data().get(), "red") })
	if n != 2 {
		t.Errorf("Broadcast to reds reached %d, want 2", n)
	}
	for i, c := range clients {
		c.expectLine("ALL\n")
		if strings.HasPrefix(names[i], "red") {
			c.expectLine("REDS\n")
		}
		// A marker proves nothing else arrived in between.
		c.send("ECHO end\r\n")
		c.expectLine("ECHO end\r\n")
	}
}

// Broadcast never blocks on a slow session: one with a full queue misses the message.
func TestBroadcast_SkipsAFullSession(t *testing.T) {
	srv, s, _, _ := blockedSession(t, Config{SendQueueSize: 1})
	if err := s.TrySend([]byte("fills the queue")); err != nil {
		t.Fatal(err)
	}
	other := dial(t, srv)
	other.send("ECHO hi\r\n")
	other.expectLine("ECHO hi\r\n")
	n := within(t, time.Second, "Broadcast", func() int { return srv.Broadcast([]byte("NEWS\n"), nil) })
	if n != 1 {
		t.Errorf("Broadcast reached %d sessions, want 1 (the full one is skipped)", n)
	}
	other.expectLine("NEWS\n")
}

// Session IDs are unique across sessions, servers and restarts.
func TestSessionIDs_Unique(t *testing.T) {
	ids := map[string]bool{}
	collect := func(srv *Server[tag], sessions chan *Session[tag]) {
		for range 10 {
			dial(t, srv)
			id := recv(t, sessions, "Connected").ID()
			if id == "" || ids[id] {
				t.Fatalf("session ID %q is empty or repeated", id)
			}
			ids[id] = true
		}
	}
	a, as, _ := registryServer(t)
	b, bs, _ := registryServer(t)
	collect(a, as)
	collect(b, bs)
	a.Stop()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	collect(a, as)
}

// Config.SessionIDPrefix starts every ID; the rest is the process-wide number, so IDs
// stay unique.
func TestSessionIDs_Prefix(t *testing.T) {
	sessions := make(chan *Session[tag], 2)
	srv := startServer(t, Config{Listeners: loopback(), SessionIDPrefix: "a-k3-", Logger: quietLogger()},
		Handlers[tag]{Connected: sessionsInto(sessions), Request: echoFrame[tag]})
	seen := map[string]bool{}
	for range 2 {
		dial(t, srv)
		id := recv(t, sessions, "Connected").ID()
		n, ok := strings.CutPrefix(id, "a-k3-")
		if _, err := strconv.ParseUint(n, 10, 64); !ok || err != nil || seen[id] {
			t.Fatalf("session ID %q: want a-k3- and a new decimal number", id)
		}
		seen[id] = true
		if s, ok := srv.Session(id); !ok || s.ID() != id {
			t.Fatalf("Session(%q) does not find the session", id)
		}
	}
}

func TestSession_Accessors(t *testing.T) {
	srv, sessions, _ := registryServer(t)
	before := time.Now()
	c := dial(t, srv)
	s := recv(t, sessions, "Connected")
	if s.Server() != srv {
		t.Errorf("Server() is not the session's server")
	}
	if s.RemoteAddr().String() != c.LocalAddr().String() || s.LocalAddr().String() != c.RemoteAddr().String() {
		t.Errorf("RemoteAddr %v LocalAddr %v; client is %v -> %v", s.RemoteAddr(), s.LocalAddr(), c.LocalAddr(), c.RemoteAddr())
	}
	if st := s.StartTime(); st.Before(before.Add(-time.Second)) || st.After(time.Now()) {
		t.Errorf("StartTime %v not within the test", st)
	}
	if s.CloseReason() != CloseUnknown {
		t.Errorf("CloseReason of a live session = %v", s.CloseReason())
	}
	if name := s.Data().get(); name != "" {
		t.Errorf("Data starts as %q, want the zero value", name)
	}
	active := s.LastActive()
	c.send("NAME typed\r\n")
	c.expectLine("NAME typed\r\n")
	eventually(t, "LastActive to move after a request", func() bool { return s.LastActive().After(active) })
	if name := s.Data().get(); name != "typed" {
		t.Errorf("Data = %q after the handler set it", name)
	}
}

// Counters: Accepted, Requests, BytesIn and BytesOut move as traffic flows.
func TestStats_Counters(t *testing.T) {
	srv := startServer(t, Config{}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	var in int
	for i := range 3 {
		c := dial(t, srv)
		for j := range 4 {
			line := fmt.Sprintf("ECHO %d-%d\r\n", i, j)
			in += len(line)
			c.send(line)
			c.expectLine(line)
		}
		c.Close()
	}
	eventually(t, "the sessions to close", func() bool { return srv.SessionCount() == 0 })
	st := srv.Stats()
	if st.Accepted != 3 || st.Requests != 12 || st.BytesIn != uint64(in) || st.BytesOut != uint64(in) {
		t.Errorf("Stats %+v; want Accepted 3, Requests 12, BytesIn %d, BytesOut %d", st, in, in)
	}
	if st.Closes[CloseClientClosing] != 3 || st.Sessions != 0 || st.Refused != 0 {
		t.Errorf("Stats %+v; want 3 ClientClosing closes, 0 sessions, 0 refused", st)
	}
	if !slices.Equal(st.Closes[:CloseClientClosing], []uint64{0, 0}) {
		t.Errorf("other close reasons counted: %v", st.Closes)
	}
}
