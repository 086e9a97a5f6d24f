package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T) string {
	t.Helper()
	srv, err := newServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv.Addrs()[0].String()
}

// member is a test client whose pushed lines queue for Receive.
type member struct {
	t *testing.T
	c *client.Conn
}

func connect(t *testing.T, addr string) *member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &member{t, c}
}

// expect sends line and checks the reply.
func (m *member) expect(line, want string) {
	m.t.Helper()
	got, err := do(context.Background(), m.c, line)
	if err != nil {
		m.t.Fatalf("%s: %v", line, err)
	}
	if got != want {
		m.t.Fatalf("%s: got %q, want %q", line, got, want)
	}
}

// pushed waits for the next pushed line and checks it.
func (m *member) pushed(want string) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, err := m.c.Receive(ctx)
	if err != nil {
		m.t.Fatalf("waiting for %q: %v", want, err)
	}
	if got := text(msg); got != want {
		m.t.Fatalf("pushed %q, want %q", got, want)
	}
}

// nothingPushed checks that no pushed line has arrived so far. Call it right after a
// reply: a line queued for this member before the reply arrives before it.
func (m *member) nothingPushed() {
	m.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if msg, err := m.c.Receive(ctx); err == nil {
		m.t.Fatalf("unexpected pushed line %q", text(msg))
	}
}

func TestOutOfOrder(t *testing.T) {
	addr := start(t)
	a := connect(t, addr)
	a.expect("ENTER lobby", "ERR login first")
	a.expect("SAY hi", "ERR login first")
	a.expect("WHO", "ERR login first")
	a.expect("LOGIN", "ERR usage: LOGIN name")
	a.expect("LOGIN bad name", "ERR usage: LOGIN name")
	a.expect("LOGIN bad!", "ERR a name is 1-20 letters, digits, '_' or '-'")
	a.expect("login ada", "OK welcome ada") // keys are case-insensitive
	a.expect("LOGIN ada", "ERR already logged in as ada")
	a.expect("SAY hi", "ERR enter a room first")
	a.expect("LEAVE", "ERR enter a room first")
	a.expect("WHO", "ERR enter a room first")
	a.expect("DANCE", "ERR unknown command: DANCE")
	a.expect("ENTER lobby", "OK entered lobby")
	a.expect("ENTER other", "ERR already in room lobby; LEAVE first")
	a.expect("SAY", "ERR usage: SAY text")
	a.expect("LEAVE", "OK left lobby")
	a.expect("ROOMS", "OK") // the empty room is gone
	a.nothingPushed()
}

func TestDuplicateName(t *testing.T) {
	addr := start(t)
	a, b, c := connect(t, addr), connect(t, addr), connect(t, addr)
	a.expect("LOGIN ada", "OK welcome ada")
	b.expect("LOGIN ada", "ERR name ada is taken")
	b.expect("LOGIN bob", "OK welcome bob")
	a.expect("ENTER lobby", "OK entered lobby")
	b.expect("ENTER lobby", "OK entered lobby")
	a.pushed("* JOIN bob")
	a.expect("QUIT", "OK bye")
	// The Closed handler frees the name and tells the room in one step: once bob has
	// heard of it, the name is free.
	b.pushed("* QUIT ada ServerClosing")
	c.expect("LOGIN ada", "OK welcome ada")
}

// TestRooms: a line said in a room reaches the room's other members and no one else.
func TestRooms(t *testing.T) {
	addr := start(t)
	ada, bob, cy := connect(t, addr), connect(t, addr), connect(t, addr)
	ada.expect("LOGIN ada", "OK welcome ada")
	bob.expect("LOGIN bob", "OK welcome bob")
	cy.expect("LOGIN cy", "OK welcome cy")
	ada.expect("ENTER red", "OK entered red")
	cy.expect("ENTER blue", "OK entered blue")
	bob.expect("ENTER red", "OK entered red")
	ada.pushed("* JOIN bob")

	bob.expect("SAY hello,  red room", "OK")
	ada.pushed("* MSG bob hello,  red room")
	ada.expect("WHO", "OK ada bob")
	cy.expect("WHO", "OK cy")
	cy.expect("ROOMS", "OK blue(1) red(2)")
	// Bob's line was queued for the red room before bob's OK; cy's and bob's replies
	// above came after it, so anything sent to them would already be here.
	cy.nothingPushed()
	bob.nothingPushed()

	bob.expect("LEAVE", "OK left red")
	ada.pushed("* LEAVE bob")
	ada.expect("SAY anyone?", "OK")
	bob.expect("WHO", "ERR enter a room first")
	bob.nothingPushed()
}

// TestMemberDisconnects: a member whose connection drops leaves its room and the others
// are told why.
func TestMemberDisconnects(t *testing.T) {
	addr := start(t)
	ada, bob := connect(t, addr), connect(t, addr)
	ada.expect("LOGIN ada", "OK welcome ada")
	bob.expect("LOGIN bob", "OK welcome bob")
	ada.expect("ENTER lobby", "OK entered lobby")
	bob.expect("ENTER lobby", "OK entered lobby")
	ada.pushed("* JOIN bob")
	bob.c.Close()
	ada.pushed("* QUIT bob ClientClosing")
	ada.expect("WHO", "OK ada")
	ada.expect("ROOMS", "OK lobby(1)")
}

// TestConcurrentChatter: members talking at once each hear every line of the others.
func TestConcurrentChatter(t *testing.T) {
	addr := start(t)
	const members, lines = 4, 25
	ms := make([]*member, members)
	for i := range ms {
		ms[i] = connect(t, addr)
		ms[i].expect(fmt.Sprintf("LOGIN m%d", i), fmt.Sprintf("OK welcome m%d", i))
	}
	for i, m := range ms {
		m.expect("ENTER hall", "OK entered hall")
		for _, earlier := range ms[:i] {
			earlier.pushed(fmt.Sprintf("* JOIN m%d", i))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			for j := range lines {
				if r, err := do(ctx, m.c, fmt.Sprintf("SAY %d", j)); err != nil || r != "OK" {
					t.Errorf("m%d SAY: %q, %v", i, r, err)
					return
				}
			}
		})
		wg.Go(func() {
			// From each other member, lines 0…lines-1 in order.
			next := make(map[string]int)
			for range (members - 1) * lines {
				msg, err := m.c.Receive(ctx)
				if err != nil {
					t.Errorf("m%d receive: %v", i, err)
					return
				}
				var who string
				var n int
				if _, err := fmt.Sscanf(text(msg), "* MSG %s %d", &who, &n); err != nil || n != next[who] || who == fmt.Sprintf("m%d", i) {
					t.Errorf("m%d got %q, want line %d from %s", i, text(msg), next[who], who)
					return
				}
				next[who]++
			}
		})
	}
	wg.Wait()
}

func TestRunClient(t *testing.T) {
	addr := start(t)
	bob := connect(t, addr)
	bob.expect("LOGIN bob", "OK welcome bob")
	bob.expect("ENTER lobby", "OK entered lobby")

	var out bytes.Buffer
	in := strings.NewReader("hello bob\n/who\n")
	if err := runClient(context.Background(), addr, "ada", "lobby", in, &out); err != nil {
		t.Fatal(err)
	}
	want := "OK welcome ada\nOK entered lobby\nOK\nOK ada bob\nOK bye\n"
	if out.String() != want {
		t.Errorf("client printed %q, want %q", out.String(), want)
	}
	bob.pushed("* JOIN ada")
	bob.pushed("* MSG ada hello bob")
	bob.pushed("* QUIT ada ServerClosing")
}
