package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/supersocket-go/supersocket/cluster/natsd"
	"github.com/supersocket-go/supersocket/internal/cli"
)

// chatNode is one supersocket process of the cluster test.
type chatNode struct {
	id     string
	cmd    *exec.Cmd
	addr   string
	logs   *logWriter
	exited chan struct{} // closed once the process has exited
	err    error         // its exit, once exited is closed
}

// buildCLI builds the supersocket command into a temporary folder.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "supersocket")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startChatNode(t *testing.T, bin, id, natsURL string) *chatNode {
	t.Helper()
	n := &chatNode{id: id, logs: newLogWriter(), exited: make(chan struct{})}
	n.cmd = exec.Command(bin, "serve", "-app", "chat", "-addr", "127.0.0.1:0", "-node-id", id, "-cluster", natsURL,
		"-cluster-user-ttl", "1s", "-cluster-heartbeat", "100ms", "-close-linger", "1s")
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			n.cmd.Process.Kill()
			t.Errorf("node %s did not stop:\n%s", id, n.logs)
		}
	})
	select {
	case n.addr = <-n.logs.listening:
	case <-n.exited:
		t.Fatalf("node %s exited: %v\n%s", id, n.err, n.logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("node %s never listened:\n%s", id, n.logs)
	}
	return n
}

// chatter is a TCP client of the chat app.
type chatter struct {
	t    *testing.T
	name string
	conn net.Conn
	r    *bufio.Reader
}

func login(t *testing.T, n *chatNode, name string) *chatter {
	t.Helper()
	conn, err := net.DialTimeout("tcp", n.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &chatter{t: t, name: name, conn: conn, r: bufio.NewReader(conn)}
	if got := c.do("LOGIN " + name); got != "OK welcome "+name {
		t.Fatalf("LOGIN %s on %s: %q", name, n.id, got)
	}
	return c
}

func (c *chatter) line(d time.Duration) (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	s, err := c.r.ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

// expect reads pushed lines until want, failing on a reply or after 5 s.
func (c *chatter) expect(want string) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := c.line(time.Until(deadline))
		if err != nil || !strings.HasPrefix(got, "* ") {
			c.t.Fatalf("%s got %q, %v; want %q", c.name, got, err, want)
		}
		if got == want {
			return
		}
	}
}

// do sends a command and returns its reply, skipping pushed lines.
func (c *chatter) do(line string) string {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatal(err)
	}
	for {
		got, err := c.line(5 * time.Second)
		if err != nil {
			c.t.Fatalf("%s: %s: %v", c.name, line, err)
		}
		if !strings.HasPrefix(got, "* ") {
			return got
		}
	}
}

// A cluster of three supersocket processes and an embedded NATS server on loopback:
// rooms, TELL, kicks, a node killed with SIGKILL, and NATS restarted.
func TestClusterOfThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs three processes")
	}
	bin := buildCLI(t)
	ns, err := natsd.Start(natsd.Options{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := ns.Addr().String()
	defer func() { ns.Shutdown() }()
	a := startChatNode(t, bin, "a", ns.ClientURL())
	b := startChatNode(t, bin, "b", ns.ClientURL())
	c := startChatNode(t, bin, "c", ns.ClientURL())

	// Rooms across nodes.
	ada, bob, cat := login(t, a, "ada"), login(t, b, "bob"), login(t, c, "cat")
	for _, p := range []*chatter{ada, bob, cat} {
		if got := p.do("ENTER lobby"); got != "OK entered lobby" {
			t.Fatal(got)
		}
	}
	if got := ada.do("SAY hello all"); got != "OK" {
		t.Fatal(got)
	}
	for _, p := range []*chatter{bob, cat} {
		p.expect("* MSG ada hello all")
	}
	if got := cat.do("WHO"); got != "OK ada bob cat" {
		t.Fatalf("WHO: %q", got)
	}
	if got := bob.do("ROOMS"); got != "OK lobby(3)" {
		t.Fatalf("ROOMS: %q", got)
	}

	// TELL across nodes, and to nobody.
	if got := cat.do("TELL ada psst"); got != "OK" {
		t.Fatal(got)
	}
	ada.expect("* TELL cat psst")
	start := time.Now()
	if got := cat.do("TELL nobody hi"); got != "ERR no such user: nobody" || time.Since(start) > time.Second {
		t.Fatalf("TELL nobody: %q after %v", got, time.Since(start))
	}

	// A second login of bob, on another node, kicks the first.
	bob2 := login(t, c, "bob")
	bob.expect("* KICKED")
	if _, err := bob.line(5 * time.Second); err == nil {
		t.Fatal("the kicked session is still open")
	}
	if got := ada.do("TELL bob where"); got != "OK" {
		t.Fatal(got)
	}
	bob2.expect("* TELL ada where")

	// Node b killed: its user is unreachable at once, unbound within its TTL, and
	// announced gone in its room (the others' Nodes() view drops b).
	dan := login(t, b, "dan")
	if got := dan.do("ENTER lobby"); got != "OK entered lobby" {
		t.Fatal(got)
	}
	for _, p := range []*chatter{ada, cat} {
		p.expect("* JOIN dan")
	}
	b.cmd.Process.Kill()
	<-b.exited
	killed := time.Now()
	within(t, 2*time.Second, "TELL dan fails at once", func() bool {
		start := time.Now()
		return ada.do("TELL dan hi") == "ERR no such user: dan" && time.Since(start) < time.Second
	})
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "supersocket_users")
	if err != nil {
		t.Fatal(err)
	}
	within(t, 3*time.Second, "dan's binding expired", func() bool {
		_, err := kv.Get(ctx, "dan")
		return err == jetstream.ErrKeyNotFound
	})
	t.Logf("dan's binding expired %v after node b was killed (TTL 1s)", time.Since(killed).Round(time.Millisecond))
	cat.expect("* QUIT dan NodeDown")
	nc.Close()
	if got := login(t, a, "dan").do("ROOMS"); got != "OK lobby(2)" {
		t.Fatalf("ROOMS after the kill: %q", got)
	}

	// NATS restarted (empty): local rooms keep working, cross-node calls fail at once;
	// then subscriptions, rooms and bindings come back by themselves.
	fay := login(t, a, "fay")
	if got := fay.do("ENTER lobby"); got != "OK entered lobby" {
		t.Fatal(got)
	}
	ns.Shutdown()
	within(t, 5*time.Second, "a sees NATS gone", func() bool {
		return ada.do("TELL cat hi") == "ERR cluster unavailable, try again"
	})
	start = time.Now()
	if got := ada.do("TELL cat hi"); got != "ERR cluster unavailable, try again" || time.Since(start) > time.Second {
		t.Fatalf("TELL without NATS: %q after %v", got, time.Since(start))
	}
	if got := ada.do("SAY local"); got != "OK" {
		t.Fatal(got)
	}
	fay.expect("* MSG ada local")
	ns, err = natsd.Start(natsd.Options{Addr: natsAddr, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 15*time.Second, "TELL works again", func() bool { return ada.do("TELL cat back") == "OK" })
	cat.expect("* TELL ada back")
	within(t, 10*time.Second, "the room spans nodes again", func() bool {
		ada.do("SAY probe")
		for {
			got, err := cat.line(300 * time.Millisecond)
			if err != nil {
				return false
			}
			if got == "* MSG ada probe" {
				return true
			}
		}
	})
	if got := cat.do("WHO"); got != "OK ada cat fay" {
		t.Fatalf("WHO after the restart: %q", got)
	}
	for _, n := range []*chatNode{a, c} {
		if strings.Contains(n.logs.String(), "level=ERROR") {
			t.Errorf("node %s logged errors:\n%s", n.id, n.logs)
		}
	}
}

// within polls cond until it holds, failing the test after d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cluster flags: errors name the flag and exit 2 with nothing started.
func TestClusterFlagsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "-app", "chat", "-node-id", "a"}, "-node-id: give -cluster"},
		{[]string{"serve", "-app", "chat", "-cluster", "nats://127.0.0.1:4222"}, "-node-id: a node ID is required"},
		{[]string{"serve", "-app", "chat", "-node-id", "a-1", "-cluster", "nats://127.0.0.1:4222"}, "-node-id"},
		{[]string{"serve", "-app", "chat", "-node-id", "a", "-cluster", "http://x"}, "-cluster: \"http://x\" is not a NATS URL"},
		{[]string{"serve", "-app", "chat", "-node-id", "a", "-cluster", "nats://x:1", "-cluster-listen", "127.0.0.1:0"}, "give one"},
		{[]string{"serve", "-app", "chat", "-node-id", "a", "-cluster", "nats://x:1", "-cluster-store", "/tmp"}, "-cluster-store: only with -cluster-listen"},
		{[]string{"serve", "-app", "chat", "-node-id", "a", "-cluster-listen", "nowhere"}, "-cluster-listen"},
		{[]string{"serve", "-app", "chat", "-node-id", "a", "-cluster", "nats://x:1", "-cluster-user-ttl", "1ms"}, "UserTTL"},
		{[]string{"serve", "-app", "chat", "-node-id", "a", "-cluster", "nats://x:1", "-cluster-heartbeat", "soon"}, "cluster-heartbeat"},
		{[]string{"serve", "-app", "echo", "-node-id", "a", "-cluster", "nats://x:1"}, `app "echo" cannot join a cluster`},
	} {
		var out bytes.Buffer
		if code := run(context.Background(), tc.args, &out); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d:\n%s", tc.args, code, cli.ExitUsage, out.String())
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: output does not say %q:\n%s", tc.args, tc.want, out.String())
		}
	}
}

// NATS unreachable at start: exit 1 with a clear message, nothing left running.
func TestClusterNATSUnreachableExit1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close()
	var out bytes.Buffer
	code := run(context.Background(), []string{"serve", "-app", "chat", "-addr", "127.0.0.1:0", "-node-id", "a", "-cluster", url}, &out)
	if code != cli.ExitError || !strings.Contains(out.String(), "NATS unavailable") || !strings.Contains(out.String(), url[len("nats://"):]) {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

// The config file's cluster block: keys checked like the rest, flags override it.
func TestClusterConfigBlock(t *testing.T) {
	path := writeFile(t, `
cluster:
  node_id: n1
  listen: 127.0.0.1:0
  user_ttl: 2s
servers:
  - app: chat
    listeners:
      - addr: 127.0.0.1:0
`)
	cf, err := loadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cl := cf.cfg.Cluster.overlay(clusterFlags{NodeID: "n2"}, map[string]bool{"node-id": true})
	if cl.NodeID != "n2" || cl.Listen != "127.0.0.1:0" || time.Duration(cl.UserTTL) != 2*time.Second || cl.check() != nil {
		t.Fatalf("cluster block %+v: %v", cl, cl.check())
	}
	_, err = loadConfigFile(writeFile(t, "cluster:\n  node: x\nservers:\n  - app: chat\n    listeners:\n      - addr: 127.0.0.1:0\n"))
	if err == nil || !strings.Contains(err.Error(), `cluster: unknown key "node"`) {
		t.Fatalf("unknown key: %v", err)
	}
	// A whole run from the file: the embedded NATS server and the node start and stop.
	addr, logs := start(t, "serve", "-config", path)
	conn := dial(t, addr)
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "LOGIN ada\r\n")
	if line, err := r.ReadString('\n'); err != nil || line != "OK welcome ada\r\n" {
		t.Fatalf("got %q, %v\n%s", line, err, logs)
	}
	if !strings.Contains(logs.String(), "embedded NATS listening") || !strings.Contains(logs.String(), "node=n1") {
		t.Fatalf("logs:\n%s", logs)
	}
}
