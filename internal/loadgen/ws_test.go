package loadgen

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/internal/websocket"
	"github.com/supersocket-go/supersocket/internal/wstest"
)

// startWSApp serves the named app on a WebSocket listener at /ws and returns its address.
func startWSApp(t *testing.T, name string, ws *supersocket.WebSocketConfig) string {
	t.Helper()
	return startAppOn(t, name, supersocket.ListenerConfig{Network: "ws", Addr: "127.0.0.1:0", WebSocket: ws})
}

// Every protocol over WebSocket against the apps: one message per request and reply,
// every reply checked. The command line app in Lines mode sends its replies as text
// messages without their line ending.
func TestBenchWebSocket(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	cases := []struct {
		app  string
		ws   *supersocket.WebSocketConfig
		args []string
	}{
		{"lineecho", nil, []string{"-proto", "line", "-size", "10"}},
		{"commandline", &supersocket.WebSocketConfig{Text: true, Lines: true}, []string{"-proto", "line", "-line-prefix", "ECHO ", "-size", "100"}},
		{"lenecho", nil, []string{"-proto", "len", "-size", "4096"}},
		{"echo", nil, []string{"-proto", "echo", "-size", "200"}},
	}
	for _, tc := range cases {
		t.Run(tc.app, func(t *testing.T) {
			t.Parallel()
			addr := startWSApp(t, tc.app, tc.ws)
			args := append([]string{"-addr", addr, "-ws", "/ws", "-conns", "3", "-pipeline", "4", "-duration", "300ms",
				"-timeout", "5s", "-server-pid", pid, "-json"}, tc.args...)
			code, out, errs := runBench(t, args...)
			if code != cli.ExitOK {
				t.Fatalf("exit status %d; stdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			r := decodeResult(t, out)
			if r.Transport != "ws" || r.Msgs <= 0 || r.Errors != 0 {
				t.Errorf("result %+v", r)
			}
		})
	}
	// The table names the WebSocket.
	addr := startWSApp(t, "echo", nil)
	code, out, errs := runBench(t, "-addr", addr, "-ws", "/ws", "-conns", "1", "-duration", "100ms", "-label", "ss")
	if code != cli.ExitOK || !strings.Contains(out, "ss at ws://"+addr+"/ws") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errs)
	}
	// A wrong path is a dial error that says why.
	code, _, errs = runBench(t, "-addr", addr, "-ws", "/nowhere", "-conns", "1", "-duration", "100ms")
	if code != cli.ExitError || !strings.Contains(errs, "404") {
		t.Fatalf("a wrong path: exit %d, %s", code, errs)
	}
}

func TestBenchWebSocketIdle(t *testing.T) {
	addr := startWSApp(t, "echo", nil)
	code, out, errs := runBench(t, "-addr", addr, "-ws", "/ws", "-idle", "20", "-idle-settle", "0s", "-json")
	if code != cli.ExitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, errs)
	}
	if r := decodeResult(t, out); r.Mode != "idle" || r.Transport != "ws" || r.OpenConns != 20 || r.Errors != 0 {
		t.Errorf("idle result %+v", r)
	}
}

// rawWSEcho is a WebSocket echo server (internal/wstest) that answers each message
// through mangle, which writes the reply's frames (msg is the nth message of the
// connection, from 0). It counts the pongs it gets.
func rawWSEcho(t *testing.T, mangle func(c net.Conn, n int, msg []byte)) (addr string, pongs *atomic.Int64) {
	pongs = new(atomic.Int64)
	addr = wstest.Serve(t, "", 10*time.Second, func(c *wstest.Conn) {
		for n := 0; ; {
			h, p, err := c.ReadFrame()
			if err != nil {
				return
			}
			switch h.Op {
			case websocket.OpPong:
				pongs.Add(1)
			case websocket.OpText, websocket.OpBinary:
				mangle(c, n, p)
				n++
			}
		}
	})
	return addr, pongs
}

// serverFrame is an unmasked frame.
var serverFrame = wstest.Frame

// The load tool takes fragmented replies, with pings between the fragments (answered),
// and finds a corrupt reply, a reply of the wrong length, and a server's close frame.
func TestBenchWebSocketRawServer(t *testing.T) {
	frag := func(c net.Conn, _ int, msg []byte) {
		half := len(msg) / 2
		c.Write(append(append(serverFrame(false, websocket.OpBinary, msg[:half]), serverFrame(true, websocket.OpPing, []byte("hi"))...),
			serverFrame(true, websocket.OpContinuation, msg[half:])...))
	}
	addr, pongs := rawWSEcho(t, frag)
	code, out, errs := runBench(t, "-addr", addr, "-ws", "/ws", "-proto", "len", "-conns", "2", "-pipeline", "3",
		"-duration", "200ms", "-timeout", "5s", "-json")
	if r := decodeResult(t, out); code != cli.ExitOK || r.Errors != 0 || r.Msgs == 0 {
		t.Fatalf("fragmented replies: exit %d, %+v\n%s", code, r, errs)
	}
	if pongs.Load() == 0 {
		t.Error("no pong answered the pings")
	}
	for name, mangle := range map[string]func(c net.Conn, n int, msg []byte){
		"flip": func(c net.Conn, n int, msg []byte) {
			if n == 5 {
				msg[len(msg)-1] ^= 1
			}
			c.Write(serverFrame(true, websocket.OpBinary, msg))
		},
		"short": func(c net.Conn, n int, msg []byte) {
			if n == 5 {
				msg = msg[:len(msg)-1]
			}
			c.Write(serverFrame(true, websocket.OpBinary, msg))
		},
		"close": func(c net.Conn, n int, msg []byte) {
			if n == 5 {
				c.Write(serverFrame(true, websocket.OpClose, websocket.AppendClose(nil, websocket.CloseInternalError, "oops")))
				return
			}
			c.Write(serverFrame(true, websocket.OpBinary, msg))
		},
	} {
		addr, _ := rawWSEcho(t, mangle)
		code, out, _ := runBench(t, "-addr", addr, "-ws", "/ws", "-proto", "len", "-conns", "1", "-pipeline", "2",
			"-duration", "200ms", "-timeout", "2s", "-json")
		r := decodeResult(t, out)
		want := map[string]string{"flip": "reply 5", "short": "a 67-byte message", "close": "1011"}[name]
		if code != cli.ExitError || r.Errors == 0 || !strings.Contains(r.ErrorSample, want) {
			t.Errorf("%s: exit %d, errors %d, sample %q; want an error naming %q", name, code, r.Errors, r.ErrorSample, want)
		}
	}
}
