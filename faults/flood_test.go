package faults

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// TestConnectionFlood: with the server at MaxConnections, a flood of connections is
// refused at once — closed before any session exists, counted — while the sessions that
// hold the slots keep being served: no established client loses a request, none waits a
// second, and their latency is logged before and during the flood.
func TestConnectionFlood(t *testing.T) {
	base := takeBaseline(t)
	const (
		maxConns = 50
		probing  = 5
		dialers  = 8
	)
	flood := 2000 * scale()
	var live, peak atomic.Int64
	var refusedHook atomic.Int64
	srv := startServer(t, supersocket.Config{
		Filter:         commandLine,
		MaxConnections: maxConns,
		OnRefused: func(_ net.Addr, why error) {
			if errors.Is(why, supersocket.ErrMaxConnections) {
				refusedHook.Add(1)
			}
		},
	}, supersocket.Handlers[struct{}]{
		Connected: func(*session) {
			n := live.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
		},
		Request: lineHandler,
		Closed:  func(*session, supersocket.CloseReason) { live.Add(-1) },
	})
	addr := addrOf(srv)
	probes := startProbers(t, probing, "before", lineProber(addr))
	// Fill the other slots with sessions that made a request and stay.
	var holders []*lineConn
	defer func() {
		for _, c := range holders {
			c.Close()
		}
	}()
	for i := range maxConns - probing {
		c := mustDial(t, addr)
		if err := c.echo(fmt.Sprint("hold", i)); err != nil {
			t.Fatal(err)
		}
		holders = append(holders, c)
	}
	if n := srv.SessionCount(); n != maxConns {
		t.Fatalf("%d sessions, want the server full at %d", n, maxConns)
	}
	eventually(t, "round trips before the flood", func() bool { return probes.count("before") >= 200*probing })

	probes.setPhase("flood")
	refused0 := srv.Stats().Refused
	var (
		mu       sync.Mutex
		refusals latencies
		served   []error
		wg       sync.WaitGroup
		next     atomic.Int64
	)
	start := time.Now()
	for range dialers {
		wg.Go(func() {
			for next.Add(1) <= int64(flood) {
				t0 := time.Now()
				c, err := dialLine(addr)
				if err != nil {
					mu.Lock()
					served = append(served, fmt.Errorf("dial: %w", err))
					mu.Unlock()
					continue
				}
				n, err := c.readToClose()
				el := time.Since(t0)
				c.Close()
				mu.Lock()
				if err != nil || n > 0 {
					served = append(served, fmt.Errorf("not refused: %d bytes, %v", n, err))
				} else {
					refusals = append(refusals, el)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	floodTime := time.Since(start)
	probes.setPhase("after")
	eventually(t, "round trips after the flood", func() bool { return probes.count("after") >= 20*probing })

	for _, err := range served {
		t.Errorf("flood connection: %v", err)
	}
	eventually(t, "every refusal to be counted", func() bool { return srv.Stats().Refused-refused0 >= uint64(flood) })
	if got := srv.Stats().Refused - refused0; got != uint64(flood) {
		t.Errorf("Stats.Refused grew by %d, want %d", got, flood)
	}
	if got := refusedHook.Load(); got != int64(flood) {
		t.Errorf("OnRefused told of %d ErrMaxConnections refusals, want %d", got, flood)
	}
	if p := peak.Load(); p > maxConns {
		t.Errorf("%d sessions at once, over MaxConnections %d", p, maxConns)
	}
	for i, c := range holders {
		if err := c.echo(fmt.Sprint("still", i)); err != nil {
			t.Errorf("a session holding a slot lost its connection: %v", err)
		}
	}
	lat := probes.check(t, time.Second)
	for _, c := range holders {
		c.Close()
	}
	holders = nil
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("flood: %d connections past MaxConnections %d in %v (%.0f/s, %d dialers); refused %d (each closed %v), peak sessions %d",
		flood, maxConns, floodTime.Round(time.Millisecond), float64(flood)/floodTime.Seconds(), dialers, len(refusals), refusals, peak.Load())
	t.Logf("flood: established round trips before %v", lat["before"])
	t.Logf("flood: established round trips during %v", lat["flood"])
	t.Logf("flood: established clients lost %d; slot holders lost 0 of %d; goroutines left %d, fds left %d", probes.lostCount(), maxConns-probing, g, fds)
}

// TestConnectionFloodPerIP: one address (127.0.0.2) floods the server past
// MaxConnectionsPerIP. Its extra connections are refused at once (ErrTooManyFromIP); the
// clients of another address (127.0.0.1) keep their round trips, and newcomers from it
// are still admitted during the flood.
func TestConnectionFloodPerIP(t *testing.T) {
	base := takeBaseline(t)
	const perIP = 10
	flood := 1000 * scale()
	var refusedIP atomic.Int64
	srv := startServer(t, supersocket.Config{
		Filter:              commandLine,
		MaxConnectionsPerIP: perIP,
		OnRefused: func(_ net.Addr, why error) {
			if errors.Is(why, supersocket.ErrTooManyFromIP) {
				refusedIP.Add(1)
			}
		},
	}, supersocket.Handlers[struct{}]{Request: lineHandler})
	addr := addrOf(srv)
	dialFrom := func(ip string) (*lineConn, error) {
		d := net.Dialer{Timeout: waitLong, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		return &lineConn{Conn: c, r: bufio.NewReader(c)}, nil
	}
	var held []*lineConn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range perIP {
		c, err := dialFrom("127.0.0.2")
		if err != nil {
			t.Skipf("cannot dial from 127.0.0.2: %v", err)
		}
		held = append(held, c)
		if err := c.echo(fmt.Sprint("hold", i)); err != nil {
			t.Fatal(err)
		}
	}
	probes := startProbers(t, 5, "before", func() (echoer, error) { return dialFrom("127.0.0.1") })
	eventually(t, "round trips before the flood", func() bool { return probes.count("before") >= 500 })
	probes.setPhase("flood")
	refused0 := srv.Stats().Refused
	var wg sync.WaitGroup
	var next atomic.Int64
	var notRefused atomic.Int64
	var refusals latencies
	var mu sync.Mutex
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(flood) {
				t0 := time.Now()
				c, err := dialFrom("127.0.0.2")
				if err != nil {
					notRefused.Add(1)
					continue
				}
				n, err := c.readToClose()
				c.Close()
				if err != nil || n > 0 {
					notRefused.Add(1)
					continue
				}
				mu.Lock()
				refusals = append(refusals, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	// Newcomers from the other address are admitted meanwhile.
	admitted := 0
	for i := range 20 {
		c, err := dialFrom("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.echo(fmt.Sprint("newcomer", i)); err != nil {
			t.Errorf("a newcomer from 127.0.0.1 during the flood: %v", err)
		} else {
			admitted++
		}
		c.Close()
	}
	wg.Wait()
	lat := probes.check(t, time.Second)
	if n := notRefused.Load(); n != 0 {
		t.Errorf("%d flood connections were not refused at once", n)
	}
	eventually(t, "every refusal to be counted", func() bool { return srv.Stats().Refused-refused0 >= uint64(flood) })
	if got := refusedIP.Load(); got != int64(flood) {
		t.Errorf("OnRefused told of %d ErrTooManyFromIP refusals, want %d", got, flood)
	}
	for i, c := range held {
		if err := c.echo(fmt.Sprint("still", i)); err != nil {
			t.Errorf("a session of the flooding address under its cap lost its connection: %v", err)
		}
		c.Close()
	}
	held = nil
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("per-IP flood: %d connections from 127.0.0.2 past MaxConnectionsPerIP %d → refused %d (each closed %v); newcomers from 127.0.0.1 admitted %d of 20",
		flood, perIP, refusedIP.Load(), refusals, admitted)
	t.Logf("per-IP flood: 127.0.0.1 round trips before %v; during %v; lost %d; goroutines left %d, fds left %d",
		lat["before"], lat["flood"], probes.lostCount(), g, fds)
}
