package cluster

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// NATS unreachable at start: a clear error, at once, and nothing started.
func TestStart_NATSUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	n, err := makeNode(testConfig("nats://"+addr, "a"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = n.Start()
	if !errors.Is(err, ErrNATSUnavailable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Start = %v; want ErrNATSUnavailable naming %s", err, addr)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Start took %v", took)
	}
	if n.State() != supersocket.StateNotStarted || n.Addrs() != nil {
		t.Fatalf("the server started: %v", n.State())
	}
	if err := n.Serve(context.Background()); !errors.Is(err, ErrNATSUnavailable) {
		t.Fatalf("Serve = %v", err)
	}
}

// NATS without JetStream: a clear error.
func TestStart_NoJetStream(t *testing.T) {
	ns := startNATSNoJS(t)
	n, err := makeNode(testConfig(ns, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); !errors.Is(err, ErrNATSUnavailable) || !strings.Contains(err.Error(), "JetStream") {
		t.Fatalf("Start = %v; want ErrNATSUnavailable about JetStream", err)
	}
}

// NATS lost at run time: local sessions keep working, cross-node calls fail at once;
// once NATS is back (restarted, empty), subscriptions, room interest and user bindings
// are back without the application doing anything.
func TestNATSRestart_RestoresEverything(t *testing.T) {
	store := t.TempDir()
	ns := startNATSAt(t, "127.0.0.1:0", store)
	addr := ns.Addr().String()
	a := newNode(t, testConfig(ns.ClientURL(), "a"))
	b := newNode(t, testConfig(ns.ClientURL(), "b"))
	ca, cb := dial(t, a), dial(t, b)
	for _, c := range []*client{ca, cb} {
		if got := c.do("JOIN lobby"); got != "OK" {
			t.Fatal(got)
		}
	}
	if got := ca.do("BIND ann"); got != "OK" {
		t.Fatal(got)
	}
	ctx := ctxT(t)

	ns.Shutdown()
	eventually(t, 5*time.Second, "both disconnected", func() bool {
		return !a.ClusterStats().Connected && !b.ClusterStats().Connected
	})
	start := time.Now()
	if err := a.SendTo(ctx, cb.id, []byte("x\r\n")); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("cross-node SendTo without NATS: %v", err)
	}
	if err := a.Publish("lobby", []byte("local only\r\n"), ""); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Publish without NATS: %v", err)
	}
	if _, err := a.Request(ctx, "b", "x", nil); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Request without NATS: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("cross-node calls took %v without NATS", took)
	}
	if got := ca.line(); got != "local only" {
		t.Fatalf("the local member: %q", got)
	}
	if err := a.SendTo(ctx, ca.id, []byte("local\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := ca.line(); got != "local" {
		t.Fatal(got)
	}
	// A session joins a new room while NATS is away, another an old one.
	if got := cb.do("JOIN late"); got != "OK" {
		t.Fatal(got)
	}
	cb2 := dial(t, b)
	if got := cb2.do("JOIN lobby"); got != "OK" {
		t.Fatal(got)
	}

	startNATSAt(t, addr, t.TempDir()) // a new server, with an empty JetStream
	eventually(t, 10*time.Second, "both reconnected", func() bool {
		return a.ClusterStats().Connected && b.ClusterStats().Connected
	})
	eventually(t, 10*time.Second, "ann's binding restored", func() bool {
		sid, err := b.LookupUser(ctx, "ann")
		return err == nil && sid == ca.id
	})
	// Each node resubscribes on its own connection: probe until b's interest is back.
	for _, room := range []string{"lobby", "late"} {
		eventually(t, 5*time.Second, room+" restored", func() bool {
			if a.Publish(room, []byte(room+"\r\n"), ca.id) != nil {
				return false
			}
			got, ok := cb.tryLine(100 * time.Millisecond)
			for ok && got != room {
				got, ok = cb.tryLine(100 * time.Millisecond)
			}
			return ok
		})
	}
	if err := b.SendToUser(ctx, "ann", []byte("hi ann\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := ca.line(); got != "hi ann" {
		t.Fatal(got)
	}
	eventually(t, 3*time.Second, "nodes see each other", func() bool { return len(a.Nodes()) == 2 && len(b.Nodes()) == 2 })
	// A member that joined while NATS was away is known to the other node (the rooms
	// were synced).
	eventually(t, 3*time.Second, "a knows b's members of lobby", func() bool {
		lobby := remoteMembers(a, "lobby")
		_, old := lobby[cb.id]
		_, joined := lobby[cb2.id]
		return old && joined && len(lobby) == 2
	})
	if st := a.ClusterStats(); st.Disconnects == 0 || st.Reconnects == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// The core never imports NATS: only the cluster package (and the CLI) do.
func TestCoreHasNoNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "..", "../filter", "../client", "../command").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if len(out) == 0 {
		t.Fatal("go list printed nothing")
	}
	for dep := range strings.Lines(string(out)) {
		if strings.Contains(dep, "nats-io") {
			t.Errorf("the core depends on %s", strings.TrimSpace(dep))
		}
	}
}

// Config errors name the field.
func TestConfig_Invalid(t *testing.T) {
	ok := Config{NodeID: "a", URL: "nats://127.0.0.1:4222"}
	for _, tc := range []struct {
		field string
		cfg   Config
	}{
		{"NodeID", Config{URL: ok.URL}},
		{"NodeID", Config{NodeID: "a-b", URL: ok.URL}},
		{"NodeID", Config{NodeID: "a.b", URL: ok.URL}},
		{"NodeID", Config{NodeID: strings.Repeat("a", 33), URL: ok.URL}},
		{"URL", Config{NodeID: "a"}},
		{"Prefix", Config{NodeID: "a", URL: ok.URL, Prefix: "a..b"}},
		{"Prefix", Config{NodeID: "a", URL: ok.URL, Prefix: "a*"}},
		{"UserTTL", Config{NodeID: "a", URL: ok.URL, UserTTL: time.Millisecond}},
		{"HeartbeatInterval", Config{NodeID: "a", URL: ok.URL, HeartbeatInterval: -1}},
		{"NodeTimeout", Config{NodeID: "a", URL: ok.URL, HeartbeatInterval: time.Second, NodeTimeout: time.Second}},
		{"MaxRequests", Config{NodeID: "a", URL: ok.URL, MaxRequests: -1}},
	} {
		_, err := tc.cfg.withDefaults(quietLogger())
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v; want an error naming %s", tc.cfg, err, tc.field)
		}
	}
	c, err := ok.withDefaults(quietLogger())
	if err != nil || c.UserTTL != DefaultUserTTL || c.NodeTimeout != 3*DefaultHeartbeatInterval || c.Prefix != DefaultPrefix {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	if _, err := New(ok, supersocket.Config{SessionIDPrefix: "x-"}, Handlers[struct{}]{}); err == nil {
		t.Fatal("New accepted a SessionIDPrefix")
	}
}
