package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket/internal/cli"
)

// TestMain doubles as the command itself when a test re-executes the test binary with
// SUPERSOCKET_RUN_MAIN set, so signal handling is tested in a real process.
func TestMain(m *testing.M) {
	if os.Getenv("SUPERSOCKET_RUN_MAIN") == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// logWriter collects the command's stderr and reports the first listening address.
type logWriter struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan string
}

func newLogWriter() *logWriter { return &logWriter{listening: make(chan string, 8)} }

var listenRE = regexp.MustCompile(`msg=listening .*addr=(\S+)`)

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := listenRE.FindSubmatch(p); m != nil {
		w.listening <- string(m[1])
	}
	return len(p), nil
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// start runs the command in-process until the test ends, and returns the address it
// listens on.
func start(t *testing.T, args ...string) (addr string, logs *logWriter) {
	t.Helper()
	logs = newLogWriter()
	ctx, cancel := context.WithCancel(context.Background())
	status := make(chan int, 1)
	go func() { status <- run(ctx, args, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-status:
			if code != cli.ExitOK {
				t.Errorf("exit status %d after cancel; logs:\n%s", code, logs)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("command did not stop; logs:\n%s", logs)
		}
	})
	select {
	case addr = <-logs.listening:
	case code := <-status:
		t.Fatalf("command exited with %d before listening; logs:\n%s", code, logs)
	case <-time.After(5 * time.Second):
		t.Fatalf("command never logged listening; logs:\n%s", logs)
	}
	return addr, logs
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCommandLineApp(t *testing.T) {
	addr, _ := start(t, "serve", "-addr", "127.0.0.1:0")
	c := dial(t, addr)
	io.WriteString(c, "ECHO hello  world \r\nadd 1 2 3\nMult -4 5\r\n\r\nFOO x\r\n"+
		"ADD 9223372036854775807 1\r\nMULT 4611686018427387904 2\r\nADD 1 x\r\nADD\r\nECHO\r\nQUIT\r\nECHO never\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	want := "hello  world \r\n6\r\n-20\r\nERR unknown command: FOO\r\n" +
		"ERR integer overflow\r\nERR integer overflow\r\nERR not an integer: \"x\"\r\nERR expected at least one integer\r\n\r\nBYE\r\n"
	if string(got) != want {
		t.Fatalf("replies:\n got %q\nwant %q", got, want)
	}
}

func TestCommandLineLineTooLong(t *testing.T) {
	addr, logs := start(t, "serve", "-addr", "127.0.0.1:0", "-max-request-length", "64")
	c := dial(t, addr)
	io.WriteString(c, "ECHO ok\r\nECHO "+strings.Repeat("x", 100)+"\r\n")
	got, _ := io.ReadAll(c) // the server closes the session: EOF (or a reset)
	if string(got) != "ok\r\n" {
		t.Fatalf("got %q, want only the first reply", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "protocol error") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the log with a deadline; no event to wait on
	}
	if !strings.Contains(logs.String(), "protocol error") {
		t.Fatalf("no protocol error logged:\n%s", logs)
	}
}

func echoPacket(id uint16, body string) []byte {
	p := make([]byte, 5+len(body))
	binary.LittleEndian.PutUint16(p[0:], uint16(len(p)))
	binary.LittleEndian.PutUint16(p[2:], id)
	p[4] = 0x7f // reserved: the reply must carry 0
	copy(p[5:], body)
	return p
}

func TestEchoApp(t *testing.T) {
	addr, _ := start(t, "serve", "-app", "echo", "-addr", "127.0.0.1:0", "-max-request-length", "1024")
	c := dial(t, addr)
	var stream []byte
	bodies := []string{"", "a", "hello, echo", strings.Repeat("z", 1019)}
	for i, b := range bodies {
		stream = append(stream, echoPacket(uint16(100+i), b)...)
	}
	// One byte per write for the first packets, the rest in one write.
	for _, b := range stream[:12] {
		c.Write([]byte{b})
	}
	c.Write(stream[12:])
	r := bufio.NewReader(c)
	for i, b := range bodies {
		want := echoPacket(uint16(100+i), b)
		want[4] = 0
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packet %d: got % x, want % x", i, got, want)
		}
	}
	// A lying header (totalSize < 5) closes the session.
	c.Write([]byte{3, 0, 1, 0, 0})
	if n, err := r.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes after a bad header; want the session closed", n)
	}
	// So does a totalSize over the limit, before any body is sent.
	c2 := dial(t, addr)
	c2.Write([]byte{0x01, 0x04, 1, 0, 0}) // 1025 > 1024
	if n, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes after an oversized header; want the session closed", n)
	}
}

// TestEchoAppUDP is the "as a new user would try it": 5-byte-header datagrams
// echoed back to their sender.
func TestEchoAppUDP(t *testing.T) {
	addr, _ := start(t, "serve", "-app", "echo", "-mode", "udp", "-addr", "127.0.0.1:0")
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, body := range []string{"", "hello over udp", strings.Repeat("u", 1000)} {
		c.Write(echoPacket(uint16(7+i), body))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, 2048)
		n, err := c.Read(got)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		want := echoPacket(uint16(7+i), body)
		want[4] = 0
		if !bytes.Equal(got[:n], want) {
			t.Fatalf("packet %d: got % x, want % x", i, got[:n], want)
		}
	}
}

func TestBadFlagsExit2(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "-max-connections", "-1"}, "-max-connections"},
		{[]string{"serve", "-max-request-length", "abc"}, "max-request-length"},
		{[]string{"serve", "-app", "nope"}, "unknown app"},
		{[]string{"serve", "-mode", "sctp"}, "-mode"},
		{[]string{"serve", "-log-level", "loud"}, "-log-level"},
		{[]string{"serve", "-addr", "no-port"}, "-addr"},
		{[]string{"serve", "-idle-timeout", "-1s"}, "-idle-timeout"},
		{[]string{"serve", "-ws-path", "/x"}, "need -mode ws"},
		{[]string{"serve", "-mode", "ws", "-ws-path", "x"}, "-ws-path"},
		{[]string{"serve", "-mode", "ws", "-ws-ping-interval", "-1s"}, "-ws-ping-interval"},
		{[]string{"serve", "-no-such-flag"}, "no-such-flag"},
		{[]string{"serve", "extra"}, "unexpected argument"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"bench", "-conns", "0"}, "supersocket bench: -conns"},
		{[]string{"soak", "-duration", "0s"}, "supersocket soak: -duration"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		if code := run(context.Background(), tc.args, &out); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d; output:\n%s", tc.args, code, cli.ExitUsage, out.String())
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: output does not name %q:\n%s", tc.args, tc.want, out.String())
		}
		if strings.Contains(out.String(), "listening") {
			t.Errorf("%v: something started:\n%s", tc.args, out.String())
		}
	}
}

func TestPortInUseExit1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-addr", ln.Addr().String()}, &out); code != cli.ExitError {
		t.Fatalf("exit %d, want %d; output:\n%s", code, cli.ExitError, out.String())
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-h"}, &out); code != cli.ExitOK {
		t.Fatalf("serve -h: exit %d", code)
	}
	for _, f := range []string{"-app", "-addr", "-max-connections", "-max-request-length", "-idle-timeout",
		"-send-queue-size", "-send-timeout", "-log-level"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("serve -h does not list %s", f)
		}
	}
}

// TestDefaultQuickStart runs the command with no arguments, as the README's quick start
// does: the commandline app on 127.0.0.1:2012.
func TestDefaultQuickStart(t *testing.T) {
	if ln, err := net.Listen("tcp", "127.0.0.1:2012"); err != nil {
		t.Skipf("127.0.0.1:2012 is busy: %v", err)
	} else {
		ln.Close()
	}
	addr, _ := start(t)
	if addr != "127.0.0.1:2012" {
		t.Fatalf("listening on %s, want 127.0.0.1:2012", addr)
	}
	c := dial(t, addr)
	io.WriteString(c, "ECHO quick start\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "quick start\r\n" {
		t.Fatalf("got %q, %v", line, err)
	}
}

// TestSignalsShutDownGracefully runs the real command in a child process and stops it
// with SIGINT and with SIGTERM: exit status 0, and a live session is closed for shutdown.
func TestSignalsShutDownGracefully(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "serve", "-addr", "127.0.0.1:0", "-log-level", "debug")
			cmd.Env = append(os.Environ(), "SUPERSOCKET_RUN_MAIN=1")
			logs := newLogWriter()
			cmd.Stderr = logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var addr string
			select {
			case addr = <-logs.listening:
			case err := <-exited:
				t.Fatalf("exited early: %v\n%s", err, logs)
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("never listened:\n%s", logs)
			}
			c := dial(t, addr)
			io.WriteString(c, "ECHO up\r\n")
			r := bufio.NewReader(c)
			if line, err := r.ReadString('\n'); err != nil || line != "up\r\n" {
				t.Fatalf("got %q, %v", line, err)
			}
			cmd.Process.Signal(sig)
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("exit after %v: %v\n%s", sig, err, logs)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("did not exit after %v:\n%s", sig, logs)
			}
			if _, err := r.ReadString('\n'); err == nil {
				t.Fatal("session still open after shutdown")
			}
			if !strings.Contains(logs.String(), "reason=ServerShutdown") {
				t.Fatalf("session not closed with ServerShutdown:\n%s", logs)
			}
		})
	}
}
