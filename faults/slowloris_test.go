package faults

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// closeEvent is what a Closed handler saw.
type closeEvent struct {
	remote     string
	reason     supersocket.CloseReason
	at         time.Time
	start      time.Time
	lastActive time.Time
}

// TestSlowloris: clients that hold connections without completing a request — silent,
// or trickling a byte every 50ms — are cut by FirstRequestTimeout; clients that made a
// request and then fall silent or trickle are cut by IdleTimeout (bytes of an unfinished
// request are not activity). Each is closed with TimeOut within a check interval or so of
// its deadline, never before; established clients keep their round trips.
func TestSlowloris(t *testing.T) {
	base := takeBaseline(t)
	const (
		firstRequest = 400 * time.Millisecond
		idle         = time.Second
		check        = 20 * time.Millisecond
		trickleEvery = 50 * time.Millisecond
		slack        = 2 * time.Second // a loaded machine may run the check late
	)
	silent, trickle, idleAfter, trickleAfter := 10*scale(), 10*scale(), 5*scale(), 5*scale()
	total := silent + trickle + idleAfter + trickleAfter
	events := make(chan closeEvent, total+16)
	srv := startServer(t, supersocket.Config{
		Filter:              commandLine,
		FirstRequestTimeout: firstRequest,
		IdleTimeout:         idle,
		IdleCheckInterval:   check,
	}, supersocket.Handlers[struct{}]{
		Request: lineHandler,
		Closed: func(s *session, why supersocket.CloseReason) {
			events <- closeEvent{s.RemoteAddr().String(), why, time.Now(), s.StartTime(), s.LastActive()}
		},
	})
	addr := addrOf(srv)
	probes := startProbers(t, 5, "during", lineProber(addr))

	group := map[string]string{} // client address → its kind
	stop := make(chan struct{})
	var tricklers sync.WaitGroup
	startTrickle := func(c net.Conn) {
		tricklers.Go(func() {
			tick := time.NewTicker(trickleEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					c.SetWriteDeadline(time.Now().Add(waitLong))
					if _, err := c.Write([]byte("x")); err != nil {
						return // the server cut it
					}
				}
			}
		})
	}
	var once sync.Once
	var conns []*lineConn
	cleanup := func() {
		once.Do(func() {
			close(stop)
			tricklers.Wait()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	defer cleanup()
	for i := range total {
		c := mustDial(t, addr)
		conns = append(conns, c)
		kind := "silent"
		switch {
		case i < silent:
		case i < silent+trickle:
			kind = "trickle"
			startTrickle(c)
		case i < silent+trickle+idleAfter:
			kind = "idle after a request"
			if err := c.echo("first"); err != nil {
				t.Fatal(err)
			}
		default:
			kind = "trickle after a request"
			if err := c.echo("first"); err != nil {
				t.Fatal(err)
			}
			startTrickle(c)
		}
		group[c.LocalAddr().String()] = kind
	}

	type span struct {
		n        int
		min, max time.Duration
	}
	spans := map[string]*span{}
	for range total {
		ev := recv(t, events, "a slow client to be cut")
		kind, ok := group[ev.remote]
		if !ok {
			t.Fatalf("an established client's session was closed (%v)", ev.reason)
		}
		if ev.reason != supersocket.CloseTimeOut {
			t.Errorf("%s client closed with %v, want TimeOut", kind, ev.reason)
		}
		// The deadline each kind runs against.
		deadline, from := firstRequest, ev.start
		if kind == "idle after a request" || kind == "trickle after a request" {
			deadline, from = idle, ev.lastActive
		}
		age := ev.at.Sub(from)
		if age < deadline {
			t.Errorf("%s client closed %v after %s, before its %v deadline", kind, age, map[bool]string{true: "connecting", false: "its last request"}[from == ev.start], deadline)
		}
		if age > deadline+slack {
			t.Errorf("%s client closed %v after its deadline's start, later than %v + %v", kind, age, deadline, slack)
		}
		sp := spans[kind]
		if sp == nil {
			sp = &span{min: age, max: age}
			spans[kind] = sp
		}
		sp.n++
		sp.min, sp.max = min(sp.min, age), max(sp.max, age)
	}
	lat := probes.check(t, time.Second)
	srv.Stop()
	cleanup()
	g, fds := base.left(t)
	for _, kind := range []string{"silent", "trickle", "idle after a request", "trickle after a request"} {
		sp := spans[kind]
		if sp == nil {
			t.Errorf("no %s client was cut", kind)
			continue
		}
		t.Logf("slowloris: %d %s clients cut with TimeOut %v…%v after %s", sp.n, kind,
			sp.min.Round(time.Millisecond), sp.max.Round(time.Millisecond),
			map[bool]string{true: fmt.Sprintf("connecting (FirstRequestTimeout %v)", firstRequest), false: fmt.Sprintf("their last request (IdleTimeout %v)", idle)}[kind == "silent" || kind == "trickle"])
	}
	t.Logf("slowloris: established clients lost %d, %v; goroutines left %d, fds left %d", probes.lostCount(), lat["during"], g, fds)
}
