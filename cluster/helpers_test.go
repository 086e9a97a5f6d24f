package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/cluster/natsd"
	"github.com/supersocket-go/supersocket/filter"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startNATS starts an embedded NATS server with JetStream on a free loopback port,
// shut down when the test ends.
func startNATS(t testing.TB) *natsd.Server {
	t.Helper()
	return startNATSAt(t, "127.0.0.1:0", t.TempDir())
}

// startNATSNoJS starts a NATS server without JetStream and returns its URL.
func startNATSNoJS(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

func startNATSAt(t testing.TB, addr, store string) *natsd.Server {
	t.Helper()
	ns, err := natsd.Start(natsd.Options{Addr: addr, StoreDir: store})
	if err != nil {
		t.Fatalf("natsd: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// lineApp is a node's app in the tests: sessions of lines. "BIND user" binds, "JOIN
// room" joins, "PUB room text" publishes, "ID" replies with the session's ID; every
// reply is a line. Kicked sessions get "KICKED user".
type lineApp struct {
	node *Node[struct{}]
}

type session = supersocket.Session[struct{}]

// testConfig is the cluster config of the tests: short timers.
func testConfig(url, id string) Config {
	return Config{
		NodeID:            id,
		URL:               url,
		UserTTL:           time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		RequestTimeout:    3 * time.Second,
		QueryTimeout:      time.Second,
		Logger:            quietLogger(),
	}
}

// newNode makes a started node with the line app, stopped when the test ends; opts
// change the server's configuration.
func newNode(t testing.TB, cfg Config, opts ...func(*supersocket.Config)) *Node[struct{}] {
	t.Helper()
	n, err := makeNode(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Stop() })
	return n
}

// twoNodes starts a NATS server and nodes a and b on it; opts change b's server
// configuration.
func twoNodes(t testing.TB, opts ...func(*supersocket.Config)) (a, b *Node[struct{}]) {
	t.Helper()
	ns := startNATS(t)
	return newNode(t, testConfig(ns.ClientURL(), "a")), newNode(t, testConfig(ns.ClientURL(), "b"), opts...)
}

func makeNode(cfg Config, opts ...func(*supersocket.Config)) (*Node[struct{}], error) {
	app := &lineApp{}
	srvCfg := supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Filter:    filter.CommandLine(),
		Logger:    quietLogger(),
	}
	for _, o := range opts {
		o(&srvCfg)
	}
	n, err := New(cfg, srvCfg, Handlers[struct{}]{
		Handlers: supersocket.Handlers[struct{}]{Request: app.request},
		Kicked: func(s *session, user string) {
			s.TrySend([]byte("KICKED " + user + "\r\n"))
		},
		// Members of a node that went down: "GONE room user session" to the room's
		// members here.
		NodeDown: func(_ NodeInfo, gone map[string][]Member) {
			for room, ms := range gone {
				for _, m := range ms {
					app.node.PublishLocal(room, []byte("GONE "+room+" "+m.UserID+" "+m.SessionID+"\r\n"), "")
				}
			}
		},
	})
	app.node = n
	return n, err
}

func (a *lineApp) request(s *session, req supersocket.Request) {
	ctx := context.Background()
	reply := func(err error) {
		if err != nil {
			s.Send([]byte("ERR " + err.Error() + "\r\n"))
		} else {
			s.Send([]byte("OK\r\n"))
		}
	}
	switch strings.ToUpper(req.Key) {
	case "ID":
		s.Send([]byte(s.ID() + "\r\n"))
	case "BIND":
		reply(a.node.Bind(ctx, s, string(req.Body)))
	case "JOIN":
		reply(a.node.JoinRoom(s, string(req.Body)))
	case "LEAVE":
		a.node.LeaveRoom(s, string(req.Body))
		reply(nil)
	case "PUB":
		room, text, _ := strings.Cut(string(req.Body), " ")
		reply(a.node.Publish(room, []byte(text+"\r\n"), s.ID()))
	}
}

// remoteMembers returns what n knows of room's members on other nodes: session ID →
// user.
func remoteMembers(n *Node[struct{}], room string) map[string]string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := map[string]string{}
	if r := n.rooms[room]; r != nil {
		maps.Copy(out, r.remote)
	}
	return out
}

// client is a TCP client of a node, reading lines.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	id   string
}

func dial(t testing.TB, n *Node[struct{}]) *client {
	t.Helper()
	conn, err := net.Dial("tcp", n.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.id = c.do("ID")
	return c
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// line reads one line, failing the test after 5 s.
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

func (c *client) do(line string) string {
	c.t.Helper()
	c.send(line)
	return c.line()
}

// tryLine reads one line if one comes within d.
func (c *client) tryLine(d time.Duration) (string, bool) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	s, err := c.r.ReadString('\n')
	if err != nil {
		return "", false
	}
	return strings.TrimRight(s, "\r\n"), true
}

// expectClosed reads until the server closes the connection, returning what came.
func (c *client) expectClosed() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c.r)
	if err != nil {
		c.t.Fatalf("connection not closed: %v (got %q)", err, b)
	}
	return string(b)
}

// silent checks nothing arrives for d.
func (c *client) silent(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	if s, err := c.r.ReadString('\n'); err == nil || s != "" {
		c.t.Fatalf("unexpected %q", s)
	}
}

// expectInOrderPerWorker reads n lines "w<worker>-<i>", the messages several workers
// sent the client's session, checks that each worker's arrive in increasing i, and that
// nothing more comes.
func (c *client) expectInOrderPerWorker(workers, n int) {
	c.t.Helper()
	last := make([]int, workers)
	for i := range last {
		last[i] = -1
	}
	for range n {
		var w, i int
		if _, err := fmt.Sscanf(c.line(), "w%d-%d", &w, &i); err != nil || w < 0 || w >= workers || i <= last[w] {
			c.t.Fatalf("worker %d: message %d after %v: %v", w, i, last, err)
		}
		last[w] = i
	}
	c.silent(200 * time.Millisecond)
}

// eventually polls cond until it holds, failing the test after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// crash ends a node as a killed process would: no goodbye, no unbinding, its NATS
// connection dropped, its server stopped.
func (n *Node[T]) crash() {
	n.life.Lock()
	l := n.link.Swap(nil)
	n.life.Unlock()
	if l != nil {
		close(l.quit)
		l.loops.Wait()
		l.cancel()
		l.nc.Close()
		l.work.Wait()
	}
	n.Server.Stop()
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
