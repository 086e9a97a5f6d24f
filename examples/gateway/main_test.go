package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func stopOnCleanup(t *testing.T, shutdown func(context.Context) error) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
}

func startGame(t *testing.T, addr, name string) (*supersocket.Server[struct{}], string) {
	t.Helper()
	srv, err := newGameServer(addr, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv.Shutdown)
	return srv, srv.Addrs()[0].String()
}

// links follows the gate's reports of its links going up and down.
type links struct {
	events chan linkEvent
	up     map[string]bool // the latest report per back end
}

type linkEvent struct {
	addr string
	up   bool
}

// startGate runs a gate for backends.
func startGate(t *testing.T, backends ...string) (*gate, string, *links) {
	t.Helper()
	g, err := newGate("127.0.0.1:0", backends)
	if err != nil {
		t.Fatal(err)
	}
	l := &links{events: make(chan linkEvent, 64), up: make(map[string]bool)}
	g.onLink = func(addr string, up bool) { l.events <- linkEvent{addr, up} }
	g.minBackoff, g.maxBackoff = 10*time.Millisecond, 100*time.Millisecond
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, g.shutdown)
	return g, g.front.Addrs()[0].String(), l
}

// wait waits until the gate's latest report on the link to addr is up (or down).
func (l *links) wait(t *testing.T, addr string, up bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		if state, ok := l.up[addr]; ok && state == up {
			return
		}
		select {
		case e := <-l.events:
			l.up[e.addr] = e.up
		case <-timeout:
			t.Fatalf("timed out waiting for the link to %s to be up=%v", addr, up)
		}
	}
}

func dialGate(t *testing.T, addr string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRouting: two clients using the same packet IDs at once each get only their own
// replies, from the back end each was given, and the two were given different ones.
func TestRouting(t *testing.T) {
	_, addr1 := startGame(t, "127.0.0.1:0", "game-1")
	_, addr2 := startGame(t, "127.0.0.1:0", "game-2")
	_, gateAddr, lk := startGate(t, addr1, addr2)
	lk.wait(t, addr1, true)
	lk.wait(t, addr2, true)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const packets = 100
	stamps := make([]string, 2)
	var wg sync.WaitGroup
	for ci := range 2 {
		c := dialGate(t, gateAddr)
		wg.Go(func() {
			// Pipelined: every packet is sent before the first reply is awaited.
			var sends sync.WaitGroup
			replies := make([]reply, packets)
			errs := make([]error, packets)
			for i := range packets {
				sends.Go(func() {
					replies[i], errs[i] = call(ctx, c, uint16(i+1), fmt.Sprintf("client%d-packet%d", ci, i+1))
				})
			}
			sends.Wait()
			for i, r := range replies {
				if errs[i] != nil {
					t.Errorf("client %d packet %d: %v", ci, i+1, errs[i])
					return
				}
				stamp, body, _ := strings.Cut(r.Body, ":")
				if r.ID != uint16(i+1) || r.Error || body != fmt.Sprintf("client%d-packet%d", ci, i+1) {
					t.Errorf("client %d packet %d: got %+v", ci, i+1, r)
					return
				}
				if stamps[ci] == "" {
					stamps[ci] = stamp
				} else if stamp != stamps[ci] {
					t.Errorf("client %d answered by %s and %s", ci, stamps[ci], stamp)
				}
			}
		})
	}
	wg.Wait()
	if stamps[0] == stamps[1] {
		t.Errorf("both clients were sent to %s; round robin should split them", stamps[0])
	}
}

// TestBackendRestart: while its back end is down a client gets error replies; once the
// back end is back, the gate reconnects on its own and replies flow again.
func TestBackendRestart(t *testing.T) {
	game, addr := startGame(t, "127.0.0.1:0", "game-1")
	g, gateAddr, lk := startGate(t, addr)
	lk.wait(t, addr, true)
	c := dialGate(t, gateAddr)
	ctx := context.Background()
	if r, err := call(ctx, c, 1, "before"); err != nil || r != (reply{ID: 1, Body: "game-1:before"}) {
		t.Fatalf("before: %+v, %v", r, err)
	}

	if err := game.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lk.wait(t, addr, false)
	if r, err := call(ctx, c, 2, "during"); err != nil || r != (reply{ID: 2, Error: true, Body: "back end " + addr + " unavailable"}) {
		t.Fatalf("during: %+v, %v", r, err)
	}

	startGame(t, addr, "game-1-restarted") // the same address
	lk.wait(t, addr, true)
	if r, err := call(ctx, c, 3, "after"); err != nil || r != (reply{ID: 3, Body: "game-1-restarted:after"}) {
		t.Fatalf("after: %+v, %v", r, err)
	}
	g.mu.Lock()
	inFlight := len(g.pending)
	g.mu.Unlock()
	if inFlight != 0 {
		t.Errorf("%d packets still recorded in flight", inFlight)
	}
}

// TestInFlightWhenBackendDies: a packet the back end received but never answered gets
// an error reply when the link closes.
func TestInFlightWhenBackendDies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, gateAddr, lk := startGate(t, addr)
	link, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	lk.wait(t, addr, true)

	c := dialGate(t, gateAddr)
	got := make(chan reply, 1)
	go func() {
		r, err := call(context.Background(), c, 7, "lost")
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	// The fake back end reads the forwarded packet: the gate's ID, not the client's.
	link.SetDeadline(time.Now().Add(5 * time.Second))
	fwd := make([]byte, headerSize+len("lost"))
	if _, err := io.ReadFull(link, fwd); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fwd[headerSize:], []byte("lost")) || packetID(fwd) == 0 {
		t.Fatalf("forwarded %x", fwd)
	}
	link.Close() // dies without answering
	select {
	case r := <-got:
		if r != (reply{ID: 7, Error: true, Body: "back end " + addr + " went away"}) {
			t.Errorf("reply %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply after the back end died")
	}
}

func TestRunClient(t *testing.T) {
	_, addr := startGame(t, "127.0.0.1:0", "game-1")
	_, gateAddr, lk := startGate(t, addr)
	lk.wait(t, addr, true)
	var out bytes.Buffer
	if err := runClient(context.Background(), gateAddr, []string{"hello", "world"}, &out); err != nil {
		t.Fatal(err)
	}
	if want := "packet 1: game-1:hello\npacket 2: game-1:world\n"; out.String() != want {
		t.Errorf("client printed %q, want %q", out.String(), want)
	}
}
