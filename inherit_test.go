package supersocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/supersocket-go/supersocket/filter"
)

// TestGivenListener: a server accepts on a net.Listener it is given; its stop closes it,
// so a second Start fails and says why.
func TestGivenListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Config{Listeners: []ListenerConfig{{Listener: ln}}, Filter: filter.CommandLine()}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if got := addrOf(srv); got != ln.Addr().String() {
		t.Fatalf("Addrs %s, want the given listener's %s", got, ln.Addr())
	}
	c := dial(t, srv)
	if got := c.roundTrip("ECHO given\r\n"); got != "ECHO given\r\n" {
		t.Fatalf("reply %q", got)
	}
	srv.Stop()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the given listener after Stop: %v", err)
	}
	if err := srv.Start(); err == nil || !strings.Contains(err.Error(), "closed by the last stop") {
		t.Fatalf("a second Start: %v", err)
	}
}

// TestGivenPacketConn: a UDP listener on a given socket.
func TestGivenPacketConn(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Config{Mode: "udp", Listeners: []ListenerConfig{{PacketConn: pc}}, Filter: filter.Whole(0)}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	u := newUDPClient(t, pc.LocalAddr().String())
	u.send([]byte("datagram"))
	if got := string(u.recv()); got != "datagram" {
		t.Fatalf("reply %q", got)
	}
	if addrOf(srv) != pc.LocalAddr().String() {
		t.Fatalf("Addrs %s", addrOf(srv))
	}
}

// TestFileListenerRestarts: a listener made from a File (an inherited descriptor) is a
// duplicate, so the server stops and starts again on the same socket, and the File stays
// open for its owner.
func TestFileListenerRestarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv := startServer(t, Config{Listeners: []ListenerConfig{{File: f}}, Filter: filter.CommandLine()}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	addr := addrOf(srv)
	for round := range 2 {
		c := dialAddr(t, addr)
		if line := fmt.Sprintf("ECHO round %d\r\n", round); c.roundTrip(line) != line {
			t.Fatalf("round %d: no echo", round)
		}
		c.Close()
		srv.Stop()
		if err := srv.Start(); err != nil {
			t.Fatalf("restart %d: %v", round, err)
		}
	}
	if srv.Addrs()[0].String() != addr {
		t.Fatalf("restarted on %s, want %s", srv.Addrs()[0], addr)
	}
}

func TestGivenSocketConfigErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer pc.Close()
	udpFile, _ := pc.(*net.UDPConn).File()
	defer udpFile.Close()
	notSocket, _ := os.Open(os.DevNull)
	defer notSocket.Close()
	expectConfigError(t, ListenerConfig{Listener: ln, PacketConn: pc}, "Listeners[0]")
	expectConfigError(t, ListenerConfig{Network: "udp", Listener: ln}, "Listeners[0].Listener")
	expectConfigError(t, ListenerConfig{PacketConn: pc}, "Listeners[0].PacketConn")
	expectConfigError(t, ListenerConfig{File: udpFile}, "Listeners[0].File")
	expectConfigError(t, ListenerConfig{File: notSocket}, "Listeners[0].File")
}

// TestServerWithoutListeners: a server only for outbound connections needs no listener.
func TestServerWithoutListeners(t *testing.T) {
	backend := startServer(t, Config{Filter: filter.CommandLine()}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	replies := make(chan string, 1)
	srv, err := New(Config{Filter: filter.CommandLine(), Logger: quietLogger()}, Handlers[struct{}]{
		Request: func(_ *Session[struct{}], r Request) { replies <- string(r.Frame) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if len(srv.Addrs()) != 0 {
		t.Fatalf("Addrs %v", srv.Addrs())
	}
	s, err := srv.Connect(context.Background(), addrOf(backend))
	if err != nil {
		t.Fatal(err)
	}
	s.Send([]byte("ECHO out\r\n"))
	if got := recv(t, replies, "the back end's reply"); got != "ECHO out\r\n" {
		t.Fatalf("reply %q", got)
	}
}

// TestInheritedFiles runs itself in a child process that inherits two sockets, as a
// restart's hand-over and as systemd's socket activation pass them, and checks what
// InheritedFiles and Config.Inherit make of them.
func TestInheritedFiles(t *testing.T) {
	if mode := os.Getenv("SUPERSOCKET_TEST_INHERIT"); mode != "" {
		inheritedChild(t, mode)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	lf, _ := ln.(*net.TCPListener).File()
	pf, _ := pc.(*net.UDPConn).File()
	defer lf.Close()
	defer pf.Close()
	for _, mode := range []string{"handover", "systemd", "systemd-other-pid"} {
		env := []string{"SUPERSOCKET_TEST_INHERIT=" + mode, "WANT_TCP=" + ln.Addr().String(), "WANT_UDP=" + pc.LocalAddr().String()}
		cmd := exec.Command(os.Args[0], "-test.run=^TestInheritedFiles$", "-test.v")
		switch mode {
		case "handover":
			env = append(env, EnvHandoverFDs+"=2", EnvHandoverFDNames+"=127.0.0.1:0,udp-socket")
		case "systemd":
			// LISTEN_PID must be the child's own: a shell exports its PID and execs.
			cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, os.Args[0], "-test.run=^TestInheritedFiles$", "-test.v")
			env = append(env, envListenFDs+"=2", envListenFDNames+"=a.socket:b.socket")
		case "systemd-other-pid":
			env = append(env, envListenFDs+"=2", envListenPID+"=1")
		}
		cmd.Env = append(os.Environ(), env...)
		cmd.ExtraFiles = []*os.File{lf, pf}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "child ok") {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
	}
}

func inheritedChild(t *testing.T, mode string) {
	files, err := InheritedFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{EnvHandoverFDs, envListenFDs, envListenPID} {
		if os.Getenv(v) != "" {
			t.Fatalf("%s is still set", v)
		}
	}
	if mode == "systemd-other-pid" {
		if len(files) != 0 {
			t.Fatalf("took %d files meant for another process", len(files))
		}
		fmt.Println("child ok")
		return
	}
	if len(files) != 2 || files[0].Network != "tcp" || files[1].Network != "udp" ||
		files[0].Addr.String() != os.Getenv("WANT_TCP") || files[1].Addr.String() != os.Getenv("WANT_UDP") {
		t.Fatalf("files: %+v", files)
	}
	// Inherit matches by name (the hand-over names a listener's Addr, port 0 included),
	// else by bound address.
	cfg := Config{Listeners: []ListenerConfig{
		{Network: "udp", Addr: os.Getenv("WANT_UDP")},
		{Addr: "127.0.0.1:0"},
		{Addr: "127.0.0.1:0"},
	}}
	rest := cfg.Inherit(files)
	switch mode {
	case "handover":
		if cfg.Listeners[0].File != files[1].File || cfg.Listeners[1].File != files[0].File || cfg.Listeners[2].File != nil || len(rest) != 0 {
			t.Fatalf("handover: matched %+v, rest %v", cfg.Listeners, rest)
		}
	case "systemd":
		if files[0].Name != "a.socket" || cfg.Listeners[0].File != files[1].File || cfg.Listeners[1].File != nil || len(rest) != 1 {
			t.Fatalf("systemd: names %q, matched %+v, rest %v", files[0].Name, cfg.Listeners, rest)
		}
	}
	cfg.Filter, cfg.Logger = filter.CommandLine(), quietLogger()
	cfg.Listeners = cfg.Listeners[:2]
	if cfg.Listeners[1].File == nil {
		cfg.Listeners = cfg.Listeners[:1]
	}
	srv, err := New(cfg, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	fmt.Println("child ok")
}
