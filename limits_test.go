package supersocket

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

type refusal struct {
	remote net.Addr
	why    error
}

func TestMaxConnections_RefusesTheNextAndKeepsTheOthers(t *testing.T) {
	const max = 3
	connected := make(chan *Session[struct{}], max+1)
	refused := make(chan refusal, 4)
	srv := startServer(t, Config{
		MaxConnections: max,
		OnRefused:      func(remote net.Addr, why error) { refused <- refusal{remote, why} },
	}, Handlers[struct{}]{Connected: sessionsInto(connected), Request: echoFrame[struct{}]})

	var live []*client
	for range max {
		c := dial(t, srv)
		recv(t, connected, "a Connected event")
		live = append(live, c)
	}
	extra := dial(t, srv)
	r := recv(t, refused, "OnRefused")
	if !errors.Is(r.why, ErrMaxConnections) {
		t.Errorf("OnRefused why = %v, want ErrMaxConnections", r.why)
	}
	if r.remote.String() != extra.LocalAddr().String() {
		t.Errorf("OnRefused remote = %v, want the extra client's %v", r.remote, extra.LocalAddr())
	}
	extra.expectClosed() // closed at once: EOF well before waitLong
	noRecv(t, connected, 20*time.Millisecond, "Connected for a refused connection")

	st := srv.Stats()
	if st.Refused != 1 || st.Accepted != max+1 || st.Sessions != max || srv.SessionCount() != max {
		t.Errorf("Stats: Refused %d Accepted %d Sessions %d, SessionCount %d; want 1, %d, %d, %d",
			st.Refused, st.Accepted, st.Sessions, srv.SessionCount(), max+1, max, max)
	}
	for _, c := range live {
		c.send("ECHO still here\r\n")
		c.expectLine("ECHO still here\r\n")
	}
	// A slot that frees up can be taken again.
	live[0].Close()
	eventually(t, "the closed session to leave", func() bool { return srv.SessionCount() == max-1 })
	again := dial(t, srv)
	recv(t, connected, "Connected for a connection in the freed slot")
	again.send("ECHO again\r\n")
	again.expectLine("ECHO again\r\n")
}

func TestAllowConnect_RefusesBeforeASessionExists(t *testing.T) {
	var refuse atomic.Bool
	var seen atomic.Pointer[net.Addr]
	connected := make(chan *Session[struct{}], 4)
	refused := make(chan refusal, 4)
	srv := startServer(t, Config{
		AllowConnect: func(remote net.Addr) bool {
			seen.Store(&remote)
			return !refuse.Load()
		},
		OnRefused: func(remote net.Addr, why error) { refused <- refusal{remote, why} },
	}, Handlers[struct{}]{Connected: sessionsInto(connected), Request: echoFrame[struct{}]})

	ok := dial(t, srv)
	s := recv(t, connected, "Connected of the allowed client")
	if got := *seen.Load(); got.String() != ok.LocalAddr().String() {
		t.Errorf("AllowConnect saw %v, want the client's address %v", got, ok.LocalAddr())
	}
	if s.RemoteAddr().String() != ok.LocalAddr().String() {
		t.Errorf("RemoteAddr %v, want %v", s.RemoteAddr(), ok.LocalAddr())
	}

	refuse.Store(true)
	no := dial(t, srv)
	r := recv(t, refused, "OnRefused")
	if !errors.Is(r.why, ErrConnectionNotAllowed) || r.remote.String() != no.LocalAddr().String() {
		t.Errorf("OnRefused(%v, %v), want (%v, ErrConnectionNotAllowed)", r.remote, r.why, no.LocalAddr())
	}
	no.expectClosed()
	noRecv(t, connected, 20*time.Millisecond, "Connected for a refused connection")
	st := srv.Stats()
	if st.Refused != 1 || st.Accepted != 2 || st.Sessions != 1 {
		t.Errorf("Stats: Refused %d Accepted %d Sessions %d; want 1, 2, 1", st.Refused, st.Accepted, st.Sessions)
	}
	var closes uint64
	for _, n := range st.Closes {
		closes += n
	}
	if closes != 0 {
		t.Errorf("a refused connection was counted as %d session closes", closes)
	}
	ok.send("ECHO allowed\r\n")
	ok.expectLine("ECHO allowed\r\n")
}

// A panicking AllowConnect refuses the connection and the server keeps accepting.
func TestAllowConnect_PanicRefuses(t *testing.T) {
	var calls atomic.Int32
	refused := make(chan refusal, 1)
	srv := startServer(t, Config{
		AllowConnect: func(net.Addr) bool {
			if calls.Add(1) == 1 {
				panic("allow bug")
			}
			return true
		},
		OnRefused: func(remote net.Addr, why error) { refused <- refusal{remote, why} },
	}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	first := dial(t, srv)
	if r := recv(t, refused, "OnRefused"); !errors.Is(r.why, ErrConnectionNotAllowed) {
		t.Errorf("why = %v", r.why)
	}
	first.expectClosed()
	second := dial(t, srv)
	second.send("ECHO ok\r\n")
	second.expectLine("ECHO ok\r\n")
}

// Idle clearing: a session that completes no request is closed with TimeOut within
// IdleTimeout plus one check interval; one that keeps completing requests is not; partial
// bytes of a request do not count as activity.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const (
		idle     = 500 * time.Millisecond
		interval = 50 * time.Millisecond
		slack    = 2 * time.Second // scheduling on a loaded machine
		tick     = 40 * time.Millisecond
	)
	type ended struct {
		reason CloseReason
		after  time.Duration // since the session started
	}
	connected := make(chan *Session[string], 3)
	ends := map[string]chan ended{"idle": make(chan ended, 1), "active": make(chan ended, 1), "partial": make(chan ended, 1)}
	srv := startServer(t, Config{IdleTimeout: idle, IdleCheckInterval: interval}, Handlers[string]{
		Connected: sessionsInto(connected),
		Request: func(s *Session[string], r Request) {
			switch r.Key {
			case "NAME":
				*s.Data() = string(r.Body)
			case "PING":
				s.Send([]byte("PONG\r\n"))
			}
			// TICK: a completed request, no reply (so only requests keep it alive).
		},
		Closed: func(s *Session[string], r CloseReason) {
			if ch, ok := ends[*s.Data()]; ok {
				ch <- ended{r, time.Since(s.StartTime())}
			}
		},
	})
	if got := srv.Config().IdleCheckInterval; got != interval {
		t.Fatalf("IdleCheckInterval = %v", got)
	}

	clients := map[string]*client{}
	for _, name := range []string{"idle", "active", "partial"} {
		c := dial(t, srv)
		c.send("NAME " + name + "\r\n")
		clients[name] = c
		recv(t, connected, "Connected")
	}
	// Naming is a request: the clock of every session starts at about the same time.

	var idleEnd, partialEnd *ended
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	start := time.Now()
	for idleEnd == nil || partialEnd == nil || time.Since(start) < 3*idle {
		select {
		case e := <-ends["idle"]:
			idleEnd = &e
		case e := <-ends["partial"]:
			partialEnd = &e
		case e := <-ends["active"]:
			t.Fatalf("the active session was closed (%v) after %v", e.reason, e.after)
		case <-ticker.C:
			clients["active"].send("TICK\r\n")
			if partialEnd == nil {
				// Half a request at a time, never a whole one. Once the server closes, the
				// write may fail: ignore it.
				clients["partial"].SetWriteDeadline(time.Now().Add(waitLong))
				clients["partial"].Write([]byte("ab"))
			}
		}
		if time.Since(start) > waitLong {
			t.Fatalf("idle sessions not closed within %v", waitLong)
		}
	}
	for name, e := range map[string]*ended{"idle": idleEnd, "partial": partialEnd} {
		if e.reason != CloseTimeOut {
			t.Errorf("%s session closed with %v, want TimeOut", name, e.reason)
		}
		if e.after < idle || e.after > idle+interval+slack {
			t.Errorf("%s session closed %v after it started, want within [%v, %v]", name, e.after, idle, idle+interval+slack)
		}
	}
	clients["idle"].expectClosed()
	clients["active"].send("PING\r\n")
	clients["active"].expectLine("PONG\r\n")
	if n := srv.Stats().Closes[CloseTimeOut]; n != 2 {
		t.Errorf("Stats.Closes[TimeOut] = %d, want 2", n)
	}
}

// Idle clearing is off by default.
func TestIdleTimeout_OffByDefault(t *testing.T) {
	srv := startServer(t, Config{}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if c := srv.Config(); c.IdleTimeout != 0 || c.IdleCheckInterval != 0 {
		t.Fatalf("IdleTimeout %v IdleCheckInterval %v, want 0 and 0", c.IdleTimeout, c.IdleCheckInterval)
	}
}
