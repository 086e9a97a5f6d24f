package client_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// lineHandlers answer "ECHO x" with x and a line ending, and "PUSH n" with OK then n
// events sent from the handler (pushed messages).
var lineHandlers = supersocket.Handlers[struct{}]{Request: func(s *session, req supersocket.Request) {
	switch req.Key {
	case "ECHO":
		s.Send(req.Body, crlf)
	case "PUSH":
		s.Send([]byte("OK\r\n"))
		n := 0
		fmt.Sscan(string(req.Body), &n)
		for i := range n {
			s.Send(fmt.Appendf(nil, "EVENT %d\r\n", i))
		}
	}
}}

// Requests from many goroutines pipeline over one WebSocket and each gets its own reply;
// pushes (sent by the handler, and broadcast) reach Receive in order.
func TestWebSocket_RequestsAndPushes(t *testing.T) {
	srv := startWSServer(t, "127.0.0.1:0", nil, nil, filter.CommandLine(), lineHandlers)
	c := dial(t, client.Config{Addr: wsURL(srv), Filter: filter.CommandLine()})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 50 {
				want := fmt.Sprintf("g%d-%d", g, k)
				m, err := c.Request(testCtx(t), []byte("ECHO "+want+"\r\n"))
				if err != nil || string(m.Frame) != want+"\r\n" {
					t.Errorf("Request %s: %q, %v", want, m.Frame, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := request(t, c, "PUSH 3"); got != "OK" {
		t.Fatalf("PUSH: %q", got)
	}
	for i := range 3 {
		if got, want := receiveLine(t, c), fmt.Sprintf("EVENT %d", i); got != want {
			t.Fatalf("push %d: %q", i, got)
		}
	}
	if n := srv.Broadcast([]byte("NEWS one\r\nNEWS two\r\n"), nil); n != 1 {
		t.Fatalf("Broadcast reached %d sessions", n)
	}
	// One message holding two requests: two pushed messages.
	if a, b := receiveLine(t, c), receiveLine(t, c); a != "NEWS one" || b != "NEWS two" {
		t.Fatalf("broadcast: %q, %q", a, b)
	}
	if err := c.Close(); err != nil || !errors.Is(c.Err(), client.ErrClosed) {
		t.Fatalf("Close: %v, Err %v", err, c.Err())
	}
}

// A server in Lines mode sends each reply as a text message without its line ending; the
// client's line filter takes each message's last line without one (filter.Finisher).
// Text messages are sent as text and must be valid UTF-8.
func TestWebSocket_TextLines(t *testing.T) {
	srv := startWSServer(t, "127.0.0.1:0", &supersocket.WebSocketConfig{Text: true, Lines: true}, nil, filter.CommandLine(),
		supersocket.Handlers[struct{}]{Request: func(s *session, req supersocket.Request) {
			s.Send(req.Body, crlf)
		}})
	c := dial(t, client.Config{Addr: wsURL(srv), Filter: filter.CommandLine(), WebSocket: client.WebSocketConfig{Text: true}})
	m, err := c.Request(testCtx(t), []byte("ECHO héllo wörld"))
	if err != nil || m.Key != "héllo" || string(m.Body) != "wörld" || string(m.Frame) != "héllo wörld" {
		t.Fatalf("Request: %+v, %v", m, err)
	}
	if err := c.Send([]byte("ECHO \xff")); !errors.Is(err, client.ErrInvalidUTF8) {
		t.Fatalf("Send of invalid UTF-8: %v", err)
	}
	if err := c.Send([]byte("ECHO \xc3"), []byte("\xa9")); err != nil { // é split across parts
		t.Fatalf("Send of a rune split across parts: %v", err)
	}
	if got := receiveLine(t, c); got != "é" {
		t.Fatalf("reply %q", got)
	}
	// The frames are text frames.
	done := make(chan struct{})
	url := rawWSServer(t, "", func(ws *rawWS) {
		defer close(done)
		ws.expect(websocket.OpText, "ECHO text")
	})
	c = dial(t, client.Config{Addr: url, Filter: filter.CommandLine(), WebSocket: client.WebSocketConfig{Text: true}})
	if err := c.Send([]byte("ECHO text")); err != nil {
		t.Fatal(err)
	}
	recv(t, done, "the raw server")
}

// The raw server sends fragmented messages with a ping between fragments, a message
// of several requests whose last lacks its line ending, and closes with its own code:
// the client answers the ping with its payload, reassembles, echoes the close code, and
// reports it in Err.
func TestWebSocket_FragmentsPingsAndServerClose(t *testing.T) {
	done := make(chan struct{})
	url := rawWSServer(t, "", func(ws *rawWS) {
		defer close(done)
		if !ws.expect(websocket.OpBinary, "HELLO\r\n") {
			return
		}
		ws.send(false, websocket.OpBinary, "frag")
		ws.send(true, websocket.OpPing, "are you there")
		if !ws.expect(websocket.OpPong, "are you there") {
			return
		}
		ws.send(false, websocket.OpContinuation, "men")
		ws.send(true, websocket.OpContinuation, "ted\r\n")
		ws.send(true, websocket.OpText, "two\r\nlines") // the last without its ending
		big := strings.Repeat("x", 70000)
		ws.send(false, websocket.OpBinary, big[:30000])
		ws.send(true, websocket.OpContinuation, big[30000:]+"\r\n")
		ws.send(true, websocket.OpPong, "unsolicited") // ignored
		ws.sendClose(4001, "bye now")
		ws.expectClose(4001)
	})
	c := dial(t, client.Config{Addr: url, Filter: filter.CommandLine(), MaxRequestLength: 80000})
	if err := c.Send([]byte("HELLO\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fragmented", "two", "lines", strings.Repeat("x", 70000)} {
		if got := receiveLine(t, c); got != want {
			t.Fatalf("pushed %.40q, want %.40q", got, want)
		}
	}
	recv(t, done, "the raw server")
	select {
	case <-c.Done():
	case <-time.After(waitLong):
		t.Fatal("the Conn did not close")
	}
	var ce *client.CloseError
	if err := c.Err(); !errors.Is(err, client.ErrClosed) || !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye now" {
		t.Fatalf("Err: %v", err)
	}
}

// Close makes the close handshake: the client's 1000 goes after what is queued, and a
// reply the server sends before its own close frame still reaches its Request.
func TestWebSocket_CloseHandshake(t *testing.T) {
	got := make(chan struct{})
	done := make(chan struct{})
	url := rawWSServer(t, "", func(ws *rawWS) {
		defer close(done)
		if !ws.expect(websocket.OpBinary, "SLOW\r\n") {
			return
		}
		close(got)
		if !ws.expect(websocket.OpBinary, "LAST\r\n") || !ws.expectClose(websocket.CloseNormal) {
			return
		}
		ws.send(true, websocket.OpBinary, "slow\r\n")
		ws.sendClose(websocket.CloseNormal, "")
		if _, _, ok := ws.read(); ok {
			t.Error("the client sent a frame after the close handshake")
		}
	})
	c := dial(t, client.Config{Addr: url, Filter: filter.CommandLine()})
	reply := make(chan string, 1)
	go func() {
		m, err := c.Request(testCtx(t), []byte("SLOW\r\n"))
		if err != nil {
			reply <- "error: " + err.Error()
			return
		}
		reply <- string(m.Frame)
	}()
	recv(t, got, "the server to get SLOW")
	if err := c.Send([]byte("LAST\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if r := recv(t, reply, "the reply"); r != "slow\r\n" {
		t.Fatalf("reply %q", r)
	}
	var ce *client.CloseError
	if err := c.Err(); err != client.ErrClosed || errors.As(err, &ce) {
		t.Fatalf("Err after Close: %v", err)
	}
	recv(t, done, "the raw server")
}

// A server's shutdown closes its WebSockets with 1001: without Reconnect the Conn ends
// with a CloseError carrying it, wrapped by ErrClosed; a Request waiting then fails with
// ErrConnectionLost.
func TestWebSocket_ServerShutdown(t *testing.T) {
	release, hanging := make(chan struct{}), make(chan struct{})
	srv := startWSServer(t, "127.0.0.1:0", nil, nil, filter.CommandLine(), supersocket.Handlers[struct{}]{
		Request: func(s *session, req supersocket.Request) {
			if req.Key == "HANG" {
				close(hanging)
				<-release
			}
			s.Send(req.Frame)
		}})
	c := dial(t, client.Config{Addr: wsURL(srv), Filter: filter.CommandLine()})
	if got := request(t, c, "ECHO x"); got != "ECHO x" {
		t.Fatalf("reply %q", got)
	}
	failed := make(chan error, 1)
	go func() {
		_, err := c.Request(testCtx(t), []byte("HANG\r\n"))
		failed <- err
	}()
	// Once HANG is being handled, the Request is in line before the shutdown.
	recv(t, hanging, "the HANG request")
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(testCtx(t)) }()
	err := recv(t, failed, "the waiting Request")
	var ce *client.CloseError
	if !errors.Is(err, client.ErrConnectionLost) || !errors.As(err, &ce) || ce.Code != int(websocket.CloseGoingAway) {
		t.Fatalf("the waiting Request: %v", err)
	}
	recv(t, c.Done(), "the Conn to close")
	if err := c.Err(); !errors.Is(err, client.ErrClosed) || !errors.As(err, &ce) || ce.Code != 1001 {
		t.Fatalf("Err: %v", err)
	}
	close(release)
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatal(err)
	}
}

// The client redials a restarted server's WebSocket, with backoff.
func TestWebSocket_Reconnect(t *testing.T) {
	addr := freePort(t)
	srv := startWSServer(t, addr, nil, nil, filter.CommandLine(), lineHandlers)
	onChange, expect := watchStates(t)
	c := dial(t, client.Config{
		Addr: "ws://" + addr + "/ws", Filter: filter.CommandLine(),
		Reconnect: true, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OnStateChange: onChange,
	})
	expect(client.StateConnected)
	if got := request(t, c, "ECHO before"); got != "before" {
		t.Fatalf("reply %q", got)
	}
	first := c.LocalAddr().String()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	expect(client.StateReconnecting)
	if err := c.Send([]byte("ECHO lost\r\n")); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Send while reconnecting: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	expect(client.StateConnected)
	if got := request(t, c, "ECHO after"); got != "after" {
		t.Fatalf("reply after reconnecting %q", got)
	}
	if c.LocalAddr().String() == first {
		t.Fatal("still on the first connection")
	}
	c.Close()
	expect(client.StateClosed)
}

// wss: the same client over TLS, with a certificate from internal/testcert.
func TestWebSocket_TLS(t *testing.T) {
	cert, roots := selfSigned(t)
	srv := startWSServer(t, "127.0.0.1:0", nil, &supersocket.TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{cert}}},
		filter.CommandLine(), lineHandlers)
	url := "wss://" + addrOf(srv) + "/ws"
	c := dial(t, client.Config{Addr: url, Filter: filter.CommandLine(), TLS: &tls.Config{RootCAs: roots}})
	if got := request(t, c, "ECHO secure"); got != "secure" {
		t.Fatalf("reply %q", got)
	}
	c.Close()
	// Without the CA the handshake fails: wss does verify.
	_, err := client.Dial(testCtx(t), client.Config{Addr: url, Filter: filter.CommandLine(), Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("wss to an untrusted server: %v", err)
	}
}

// The handshake: the server's choice of subprotocol, the Origin and further header
// fields reach the server, and refusals are HandshakeErrors with the status.
func TestWebSocket_Handshake(t *testing.T) {
	seen := make(chan *supersocket.WebSocketInfo, 1)
	srv := startWSServer(t, "127.0.0.1:0", &supersocket.WebSocketConfig{
		Origins: []string{"https://good.example"}, Subprotocols: []string{"v2", "v1"},
	}, nil, filter.CommandLine(), supersocket.Handlers[struct{}]{
		Connected: func(s *session) { seen <- s.WebSocket() },
		Request:   echoFrame,
	})
	base := client.Config{Addr: "ws://" + addrOf(srv) + "/ws?room=7", Filter: filter.CommandLine()}
	cfg := base
	cfg.WebSocket = client.WebSocketConfig{Origin: "https://good.example", Subprotocols: []string{"v1", "v2"},
		Header: textproto.MIMEHeader{"Authorization": {"Bearer t0ken"}}}
	c := dial(t, cfg)
	info := recv(t, seen, "Connected")
	if c.Subprotocol() != "v2" || info.Subprotocol != "v2" || info.Target != "/ws?room=7" ||
		info.Header.Get("Authorization") != "Bearer t0ken" || info.Header.Get("Origin") != "https://good.example" {
		t.Fatalf("client chose %q; server saw %+v", c.Subprotocol(), info)
	}
	c.Close()

	refused := func(cfg client.Config, status int) {
		t.Helper()
		cfg.Logger = quietLogger()
		_, err := client.Dial(testCtx(t), cfg)
		var he *client.HandshakeError
		if !errors.As(err, &he) || he.Status != status {
			t.Fatalf("Dial %s: %v, want a %d refusal", cfg.Addr, err, status)
		}
	}
	cfg = base
	cfg.WebSocket.Origin = "https://evil.example"
	refused(cfg, 403)
	cfg = base
	cfg.Addr = "ws://" + addrOf(srv) + "/elsewhere"
	refused(cfg, 404)
}

// The client fails a connection whose server breaks the protocol, saying why in a close
// frame: 1002 for a masked server frame or a message that ends inside a request, 1009 for
// a message over MaxRequestLength; and a handshake that chose a subprotocol not offered.
func TestWebSocket_ServerProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    filter.Factory
		send func(ws *rawWS)
		code websocket.CloseCode
	}{
		{"masked frame", filter.CommandLine(), func(ws *rawWS) {
			ws.Write(append(websocket.AppendHeader(nil, true, 0, websocket.OpBinary, 1, &[4]byte{}), 'x'))
		}, websocket.CloseProtocolError},
		{"partial request", filter.Uint16BE(), func(ws *rawWS) { ws.send(true, websocket.OpBinary, "\x00\x05ab") },
			websocket.CloseProtocolError},
		{"too big", filter.CommandLine(), func(ws *rawWS) { ws.send(true, websocket.OpBinary, strings.Repeat("z", 101)) },
			websocket.CloseMessageTooBig},
		{"bad utf-8", filter.CommandLine(), func(ws *rawWS) { ws.send(true, websocket.OpText, "\xc0\xaf\r\n") },
			websocket.CloseInvalidPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			url := rawWSServer(t, "", func(ws *rawWS) {
				defer close(done)
				tc.send(ws)
				ws.expectClose(tc.code)
			})
			c := dial(t, client.Config{Addr: url, Filter: tc.f, MaxRequestLength: 100})
			recv(t, done, "the raw server")
			recv(t, c.Done(), "the Conn to close")
			if err := c.Err(); !errors.Is(err, client.ErrProtocol) {
				t.Fatalf("Err: %v", err)
			}
		})
	}
	url := rawWSServer(t, "Sec-WebSocket-Protocol: other\r\n", func(ws *rawWS) {})
	_, err := client.Dial(testCtx(t), client.Config{Addr: url, Filter: filter.CommandLine(), Logger: quietLogger(),
		WebSocket: client.WebSocketConfig{Subprotocols: []string{"mine"}}})
	if err == nil || !strings.Contains(err.Error(), "not offered") {
		t.Fatalf("a subprotocol not offered: %v", err)
	}
}

func TestWebSocket_ConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg   client.Config
		field string
	}{
		{client.Config{Addr: "ws://127.0.0.1:1/ws", TLS: &tls.Config{}}, "TLS"},
		{client.Config{Addr: "127.0.0.1:1", WebSocket: client.WebSocketConfig{Origin: "x"}}, "WebSocket"},
		{client.Config{Addr: "ws://127.0.0.1:1/ws", Network: "udp"}, "Network"},
		{client.Config{Addr: "ws:///ws"}, "Addr"},
		{client.Config{Addr: "ws://127.0.0.1:1/ws#frag"}, "Addr"},
		{client.Config{Addr: "ws://u:p@127.0.0.1:1/ws"}, "Addr"},
		{client.Config{Addr: "ws://127.0.0.1:1/ws", WebSocket: client.WebSocketConfig{Subprotocols: []string{"a b"}}}, "WebSocket.Subprotocols"},
		{client.Config{Addr: "ws://127.0.0.1:1/ws", WebSocket: client.WebSocketConfig{Header: textproto.MIMEHeader{"Sec-WebSocket-Key": {"x"}}}}, "WebSocket.Header"},
		{client.Config{Addr: "ws://127.0.0.1:1/ws", WebSocket: client.WebSocketConfig{Origin: "a\r\nb"}}, "WebSocket.Origin"},
	} {
		tc.cfg.Filter = filter.CommandLine()
		_, err := client.Dial(testCtx(t), tc.cfg)
		var ce *client.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: %v, want a ConfigError for %s", tc.cfg.Addr, err, tc.field)
		}
	}
}

// Close is bounded by CloseLinger when the server never answers the close frame.
func TestWebSocket_CloseBounded(t *testing.T) {
	done := make(chan struct{})
	url := rawWSServer(t, "", func(ws *rawWS) {
		defer close(done)
		ws.expectClose(websocket.CloseNormal)
		ws.read() // the client ends the connection after its linger
	})
	c := dial(t, client.Config{Addr: url, Filter: filter.CommandLine(), CloseLinger: 50 * time.Millisecond})
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > waitLong/2 {
		t.Fatalf("Close took %v", d)
	}
	recv(t, done, "the raw server")
}
