package supersocket

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	ssclient "github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// onePort serves, on one detecting listener (TLS and WebSocket beside raw), a line
// server that answers "KEY rest" with "KEY:rest", and reports each session. greet, when
// set, is sent by Connected (a protocol where the server speaks first).
func onePort(t *testing.T, ca *testCA, detect DetectConfig, proxy *ProxyConfig, greet string) (*Server[struct{}], chan *Session[struct{}]) {
	t.Helper()
	cert, _, _ := ca.issue(t, "server", false)
	sessions := make(chan *Session[struct{}], 64)
	srv := startServer(t, Config{
		Listeners: []ListenerConfig{{
			Addr:      "127.0.0.1:0",
			TLS:       &TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{cert}}},
			WebSocket: &WebSocketConfig{Text: true, Lines: true},
			Detect:    &detect,
			Proxy:     proxy,
		}},
		Filter: filter.CommandLine(),
	}, Handlers[struct{}]{
		Connected: func(s *Session[struct{}]) {
			if greet != "" {
				s.Send([]byte(greet))
			}
			sessions <- s
		},
		Request: func(s *Session[struct{}], r Request) { s.Send([]byte(r.Key+":"), r.Body, []byte("\r\n")) },
	})
	return srv, sessions
}

// lineOver sends line on c and reads one line back.
func lineOver(t *testing.T, c net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("after %q: read %q, %v", line, got, err)
	}
	return got
}

func wsRequest(t *testing.T, url string, tlsCfg *tls.Config, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := ssclient.Dial(ctx, ssclient.Config{Addr: url, TLS: tlsCfg, Filter: filter.CommandLine(), WebSocket: ssclient.WebSocketConfig{Text: true}, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer c.Close()
	m, err := c.Request(ctx, []byte(line))
	if err != nil {
		t.Fatalf("%s: request: %v", url, err)
	}
	return string(m.Frame)
}

// TestDetectOnePort: raw TCP, TLS, WebSocket and WebSocket over TLS on one port, each
// session with the transport its client spoke.
func TestDetectOnePort(t *testing.T) {
	ca := newTestCA(t)
	srv, sessions := onePort(t, ca, DetectConfig{}, nil, "")
	addr := addrOf(srv)
	clientTLS := &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"}

	raw := dialAddr(t, addr)
	if got := raw.roundTrip("ECHO raw\r\n"); got != "ECHO:raw\r\n" {
		t.Fatalf("raw: %q", got)
	}
	if s := recv(t, sessions, "the raw session"); s.TLS() != nil || s.WebSocket() != nil {
		t.Fatal("the raw session is TLS or WebSocket")
	}

	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLong}, "tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if got := lineOver(t, tc, bufio.NewReader(tc), "ECHO tls\r\n"); got != "ECHO:tls\r\n" {
		t.Fatalf("tls: %q", got)
	}
	if s := recv(t, sessions, "the TLS session"); s.TLS() == nil || s.WebSocket() != nil {
		t.Fatal("the TLS session is not TLS, or is WebSocket")
	}

	if got := wsRequest(t, "ws://"+addr+"/ws", nil, "ECHO ws"); got != "ECHO:ws" {
		t.Fatalf("ws: %q", got)
	}
	if s := recv(t, sessions, "the WebSocket session"); s.TLS() != nil || s.WebSocket() == nil {
		t.Fatal("the ws session is TLS, or not WebSocket")
	}

	if got := wsRequest(t, "wss://"+addr+"/ws", clientTLS, "ECHO wss"); got != "ECHO:wss" {
		t.Fatalf("wss: %q", got)
	}
	if s := recv(t, sessions, "the wss session"); s.TLS() == nil || s.WebSocket() == nil {
		t.Fatal("the wss session is not TLS and WebSocket")
	}
	if st := srv.Stats(); st.HandshakeFailures != 0 {
		t.Fatalf("Stats: %+v", st)
	}
}

// TestDetectRawLookalikes: first bytes that start like TLS or HTTP but are not go to the
// raw filter whole, and a GET that is HTTP but no upgrade gets the upgrade's HTTP error.
func TestDetectRawLookalikes(t *testing.T) {
	ca := newTestCA(t)
	srv, sessions := onePort(t, ca, DetectConfig{}, nil, "")
	addr := addrOf(srv)
	for _, tt := range []struct{ send, want string }{
		{"GET key\r\n", "GET:key\r\n"},                     // a line protocol's GET, not HTTP
		{"GET /a b HTTP/1.1\r\n", "GET:/a b HTTP/1.1\r\n"}, // a space in the target
		{"\x16\x01 x\r\n", "\x16\x01:x\r\n"},               // 0x16 without a TLS version
		{"G\r\n", "G:\r\n"},
		{"\x00\xffgarbage\r\n", "\x00\xffgarbage:\r\n"},
	} {
		c := dialAddr(t, addr)
		if got := c.roundTrip(tt.send); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.send, got, tt.want)
		}
		recv(t, sessions, "the session")
	}
	c := dialAddr(t, addr)
	c.send("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil || resp.StatusCode/100 != 4 {
		t.Fatalf("a plain GET: %v, %v", resp, err)
	}
	noRecv(t, sessions, 50*time.Millisecond, "session")
}

// TestDetectTimeoutServesRaw: a silent client, and one whose first bytes could still be
// an HTTP request, are served raw once the detection timeout passes: a protocol where
// the server speaks first gets its greeting then, and never hangs.
func TestDetectTimeoutServesRaw(t *testing.T) {
	const timeout = 150 * time.Millisecond
	ca := newTestCA(t)
	srv, sessions := onePort(t, ca, DetectConfig{Timeout: timeout}, nil, "HELLO\r\n")
	start := time.Now()
	silent := dialAddr(t, addrOf(srv))
	silent.expectLine("HELLO\r\n")
	if d := time.Since(start); d < timeout {
		t.Fatalf("greeted after %v, before the detection timeout %v", d, timeout)
	}
	recv(t, sessions, "the silent session")
	undecided := dialAddr(t, addrOf(srv))
	undecided.send("GE")
	undecided.expectLine("HELLO\r\n")
	recv(t, sessions, "the undecided session")
	if got := undecided.roundTrip("T x\r\n"); got != "GET:x\r\n" {
		t.Fatalf("the undecided client's first line: %q", got)
	}
}

// TestDetectAfterProxyHeader: the PROXY header first, then detection: TLS and raw
// clients of the same proxy each get a session under the client's address.
func TestDetectAfterProxyHeader(t *testing.T) {
	ca := newTestCA(t)
	srv, sessions := onePort(t, ca, DetectConfig{}, &ProxyConfig{TrustedFrom: []string{"127.0.0.1"}}, "")
	raw := dialAddr(t, addrOf(srv))
	if got := raw.roundTrip(v1Header("127.0.0.2:1", "127.0.0.1:2") + "ECHO raw\r\n"); got != "ECHO:raw\r\n" {
		t.Fatalf("raw: %q", got)
	}
	if s := recv(t, sessions, "the raw session"); s.RemoteAddr().String() != "127.0.0.2:1" || s.TLS() != nil {
		t.Fatalf("raw session: %s, TLS %v", s.RemoteAddr(), s.TLS() != nil)
	}
	c, err := net.DialTimeout("tcp", addrOf(srv), waitLong)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(v1Header("127.0.0.3:1", "127.0.0.1:2")))
	tc := tls.Client(c, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
	if got := lineOver(t, tc, bufio.NewReader(tc), "ECHO tls\r\n"); got != "ECHO:tls\r\n" {
		t.Fatalf("tls: %q", got)
	}
	if s := recv(t, sessions, "the TLS session"); s.RemoteAddr().String() != "127.0.0.3:1" || s.TLS() == nil {
		t.Fatalf("TLS session: %s, TLS %v", s.RemoteAddr(), s.TLS() != nil)
	}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		in      string
		tls, ws bool
		want    protocol
		decided bool
	}{
		{"", true, true, protoRaw, false},
		{"\x16", true, true, protoRaw, false},
		{"\x16\x03\x01", true, true, protoTLS, true},
		{"\x16\x03", false, true, protoRaw, true},
		{"G", true, true, protoRaw, false},
		{"GET /ws HTT", true, true, protoRaw, false},
		{"GET /ws HTTP/1.1\r\n", true, true, protoWebSocket, true},
		{"GET /ws HTTP/1.1\r\n", true, false, protoRaw, true},
		{"GET /ws HTTP/1.0\r\n", false, true, protoWebSocket, true},
		{"GET /ws HTTP/2.0\r\n", false, true, protoRaw, true},
		{"GET  /ws HTTP/1.1\r\n", false, true, protoRaw, true},
		{"GET /ws\n", false, true, protoRaw, true},
		{"GET " + strings.Repeat("a", 60), false, true, protoRaw, true},
		{"POST /ws HTTP/1.1\r\n", true, true, protoRaw, true},
	} {
		p, ok := classify([]byte(tt.in), tt.tls, tt.ws, 64)
		if p != tt.want || ok != tt.decided {
			t.Errorf("classify(%q, tls %v, ws %v) = %v, %v; want %v, %v", tt.in, tt.tls, tt.ws, p, ok, tt.want, tt.decided)
		}
	}
}

func TestDetectConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		l     ListenerConfig
		field string
	}{
		{ListenerConfig{Addr: "127.0.0.1:0", Detect: &DetectConfig{}}, "Listeners[0].Detect"},
		{ListenerConfig{Addr: "127.0.0.1:0", Detect: &DetectConfig{Timeout: -1}, WebSocket: &WebSocketConfig{}}, "Listeners[0].Detect.Timeout"},
		{ListenerConfig{Network: "udp", Addr: "127.0.0.1:0", Detect: &DetectConfig{}, WebSocket: &WebSocketConfig{}}, "Listeners[0].WebSocket"},
		{ListenerConfig{Addr: "127.0.0.1:0", WebSocket: &WebSocketConfig{}}, "Listeners[0].WebSocket"},
	} {
		expectConfigError(t, tt.l, tt.field)
	}
}
