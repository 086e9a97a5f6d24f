package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTick = 10 * time.Millisecond

func start(t *testing.T) (*game, string) {
	t.Helper()
	g, err := newGame("127.0.0.1:0", testTick)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, g) })
	return g, g.srv.Addrs()[0].String()
}

func shutdown(t *testing.T, g *game) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

type testClient struct {
	t *testing.T
	c *client.Conn
}

func connect(t *testing.T, addr string) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &testClient{t, c}
}

func (tc *testClient) expect(line, want string) {
	tc.t.Helper()
	got, err := do(context.Background(), tc.c, line)
	if err != nil {
		tc.t.Fatalf("%s: %v", line, err)
	}
	if got != want {
		tc.t.Fatalf("%s: got %q, want %q", line, got, want)
	}
}

// tick waits for the next TICK line and returns its number and the rest.
func (tc *testClient) tick() (uint64, string) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := tc.c.Receive(ctx)
	if err != nil {
		tc.t.Fatalf("waiting for a tick: %v", err)
	}
	return parseTick(tc.t, m)
}

// queued returns the ticks that have arrived and not been read, without waiting.
func (tc *testClient) queued() []uint64 {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ns []uint64
	for {
		m, err := tc.c.Receive(ctx)
		if err != nil {
			return ns
		}
		n, _ := parseTick(tc.t, m)
		ns = append(ns, n)
	}
}

func parseTick(t *testing.T, m client.Message) (uint64, string) {
	t.Helper()
	num, rest, _ := strings.Cut(string(m.Body), " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if m.Key != "TICK" || err != nil {
		t.Fatalf("not a tick: %q", m.Frame)
	}
	return n, rest
}

// TestTicks: ticks arrive in order, numbered one apart, carry the players' moves, and
// stop once the client has left, though the room goes on ticking for the others.
func TestTicks(t *testing.T) {
	g, addr := start(t)
	ada, bob := connect(t, addr), connect(t, addr)
	ada.expect("JOIN arena ada", "OK joined arena")
	bob.expect("JOIN arena bob", "OK joined arena")
	bob.expect("JOIN arena bob", "ERR already in arena; LEAVE first")
	connect(t, addr).expect("JOIN arena ada", "ERR ada is already in arena")

	last, _ := ada.tick()
	for range 5 {
		n, _ := ada.tick()
		if n != last+1 {
			t.Fatalf("tick %d after tick %d", n, last)
		}
		last = n
	}

	// A move shows in a later tick.
	ada.expect("MOVE 1 -1", "OK")
	ada.expect("MOVE 2 0", "ERR dx and dy are -1, 0 or 1")
	re := regexp.MustCompile(`^ada=1,-1 bob=0,0$`)
	for moved := false; !moved; {
		n, state := ada.tick()
		if n != last+1 {
			t.Fatalf("tick %d after tick %d", n, last)
		}
		last = n
		moved = re.MatchString(state)
		if !moved && state != "ada=0,0 bob=0,0" {
			t.Fatalf("tick %d: state %q", n, state)
		}
	}

	ada.expect("LEAVE", "OK left arena")
	// Ada was out of the room before her OK was queued, so every tick she will ever get
	// was queued before it, and has arrived by now.
	for _, n := range ada.queued() {
		if n != last+1 {
			t.Fatalf("tick %d after tick %d", n, last)
		}
		last = n
	}
	// The room goes on: wait until bob sees three ticks past ada's last one…
	for {
		n, state := bob.tick()
		if strings.Contains(state, "ada=") && n > last {
			t.Fatalf("tick %d after ada left still has her: %q", n, state)
		}
		if n >= last+3 {
			break
		}
	}
	// …and ada got none of them: one would have been queued before this PONG.
	ada.expect("PING", "PONG")
	if ns := ada.queued(); len(ns) > 0 {
		t.Fatalf("ada got ticks %v after she left", ns)
	}
	ada.expect("MOVE 1 0", "ERR join a room first")

	bob.expect("LEAVE", "OK left arena")
	if n := g.world.roomCount(); n != 0 {
		t.Errorf("%d rooms left running after the last player left", n)
	}
	ada.expect("JOIN arena ada", "OK joined arena") // a fresh room, from tick 1
	if n, state := ada.tick(); n != 1 || state != "ada=0,0" {
		t.Errorf("first tick of a new room: %d %q", n, state)
	}
}

// TestLoopStopsWithServer: shutting the game down stops every room loop while players
// are still in them, and leaves no goroutine behind.
func TestLoopStopsWithServer(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	g, addr := start(t)
	var cs []*testClient
	for i := range 3 {
		c := connect(t, addr)
		c.expect(fmt.Sprintf("JOIN room%d p%d", i%2, i), fmt.Sprintf("OK joined room%d", i%2))
		c.tick()
		cs = append(cs, c)
	}
	if n := g.world.roomCount(); n != 2 {
		t.Fatalf("%d rooms running, want 2", n)
	}
	shutdown(t, g) // returns once every room loop has returned
	if n := g.world.roomCount(); n != 0 {
		t.Errorf("%d rooms still running after shutdown", n)
	}
	for _, c := range cs {
		c.c.Close()
	}
	goleak.VerifyNone(t, ignore)
}

func TestRunClient(t *testing.T) {
	_, addr := start(t)
	var out bytes.Buffer
	if err := runClient(context.Background(), addr, "arena", "ada", 5, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || lines[5] != "OK left arena" {
		t.Fatalf("client printed %q", out.String())
	}
	// Ticks 1…5, moving right after ticks 1, 3 and 5: the position only grows.
	x := 0
	for i, l := range lines[:5] {
		var n, gotX, y int
		if _, err := fmt.Sscanf(l, "TICK %d ada=%d,%d", &n, &gotX, &y); err != nil || n != i+1 || gotX < x || y != 0 {
			t.Fatalf("line %d: %q", i, l)
		}
		x = gotX
	}
}
