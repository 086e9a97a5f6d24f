package faults

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// wsConn is a raw WebSocket client of the faults' command-line app (Text and Lines mode):
// it speaks the protocol byte for byte, so a test can also break it.
type wsConn struct {
	net.Conn
	r *bufio.Reader
}

const wsUpgrade = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func dialWS(addr string) (*wsConn, error) {
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c, wsUpgrade); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 101 {
		c.Close()
		return nil, fmt.Errorf("handshake: %v %v", resp, err)
	}
	c.SetDeadline(time.Time{})
	return &wsConn{Conn: c, r: r}, nil
}

// frame returns a masked client frame.
func wsFrame(op websocket.Opcode, payload string) []byte {
	key := [4]byte{9, 8, 7, 6}
	b := websocket.AppendHeader(nil, true, 0, op, len(payload), &key)
	p := []byte(payload)
	websocket.Mask(key, 0, p)
	return append(b, p...)
}

// echo sends "ECHO word" as a text message and checks the reply message, "word".
func (c *wsConn) echo(word string) error {
	c.SetDeadline(time.Now().Add(waitLong))
	if _, err := c.Write(wsFrame(websocket.OpText, "ECHO "+word)); err != nil {
		return err
	}
	op, payload, err := c.read()
	if err != nil {
		return err
	}
	if op != websocket.OpText || string(payload) != word {
		return fmt.Errorf("echo %q: got %v %q", word, op, payload)
	}
	return nil
}

// read reads one server frame.
func (c *wsConn) read() (websocket.Opcode, []byte, error) {
	var hb []byte
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		hb = append(hb, b)
		h, n, err := websocket.ParseHeader(hb, 1<<20)
		if err != nil {
			return 0, nil, err
		}
		if n > 0 {
			p := make([]byte, h.Length)
			_, err := io.ReadFull(c.r, p)
			return h.Op, p, err
		}
	}
}

func wsProber(addr string) func() (echoer, error) {
	return func() (echoer, error) { return dialWS(addr) }
}

// TestWebSocketFaults: what goes wrong with WebSocket clients in production stays with
// the client at fault. Garbage after the upgrade and unmasked frames close only that
// session with ProtocolError (and close code 1002); a frame cut by an RST is never
// handled (SocketError); a client that trickles its upgrade request, and a flood of
// half-open upgrades, are cut at HandshakeTimeout without ever becoming sessions, their
// MaxConnections slots given back; established WebSocket clients lose nothing meanwhile.
func TestWebSocketFaults(t *testing.T) {
	base := takeBaseline(t)
	const handshakeTimeout = 300 * time.Millisecond
	garbage, cut, trickle, halfOpen := 10*scale(), 10*scale(), 5*scale(), 100*scale()
	tally := newCloseTally()
	var handled sync.Map // bodies handled, to prove no cut frame was
	srv := startServer(t, supersocket.Config{
		Listeners:        []supersocket.ListenerConfig{{Network: "ws", Addr: "127.0.0.1:0", WebSocket: &supersocket.WebSocketConfig{Text: true, Lines: true}}},
		Filter:           commandLine,
		HandshakeTimeout: handshakeTimeout,
		MaxConnections:   halfOpen + 100,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *session, req supersocket.Request) {
			handled.Store(string(req.Body), true)
			lineHandler(s, req)
		},
		Closed: tally.closed,
	})
	addr := addrOf(srv)
	probes := startProbers(t, 5, "during", wsProber(addr))

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Garbage after the upgrade, of the kinds a broken or hostile client sends: frames
	// unmasked, with a reserved opcode, with RSV2/RSV3 set, a 64-bit length with its top
	// bit set, a fragmented control frame. (Random bytes may well declare a frame whose
	// payload has not all come, which a server must wait for.)
	key := [4]byte{1, 2, 3, 4}
	garbageFrames := [][]byte{
		append(websocket.AppendHeader(nil, true, 0, websocket.OpText, 6, nil), "ECHO x"...),
		websocket.AppendHeader(nil, true, 0, websocket.Opcode(3), 0, &key),
		websocket.AppendHeader(nil, true, 2, websocket.OpBinary, 0, &key),
		{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
		websocket.AppendHeader(nil, false, 0, websocket.OpPing, 0, &key),
	}
	for i := range garbage {
		c, err := dialWS(addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(waitLong))
		c.Write(garbageFrames[i%len(garbageFrames)])
		op, payload, err := c.read()
		if err != nil || op != websocket.OpClose {
			t.Fatalf("garbage client %d: %v %q %v, want a close frame", i, op, payload, err)
		}
		if code, _, _ := websocket.ParseClose(payload); code != websocket.CloseProtocolError {
			t.Errorf("garbage client %d: close code %v, want 1002", i, code)
		}
		// Gone without answering the close frame, as such a client goes: its session
		// ends at the EOF instead of holding its MaxConnections slot for CloseTimeout
		// into the handshake flood below (which then refused one, at 10×).
		c.Close()
	}
	// Frames cut by an RST: the header and half the payload of "ECHO cut-N", then a reset.
	for i := range cut {
		c, err := dialWS(addr)
		if err != nil {
			t.Fatal(err)
		}
		f := wsFrame(websocket.OpText, fmt.Sprintf("ECHO cut-%d", i))
		c.Write(f[:len(f)-4])
		c.Conn.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	// Trickled upgrade requests, and half-open upgrades that stall.
	var hsClients sync.WaitGroup
	hsCut := make(chan time.Duration, trickle+halfOpen)
	start := time.Now()
	for i := range trickle + halfOpen {
		c, err := net.DialTimeout("tcp", addr, waitLong)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		hsClients.Go(func() {
			c.SetDeadline(time.Now().Add(waitLong))
			if i >= trickle {
				c.Write([]byte(wsUpgrade[:len(wsUpgrade)/2]))
			} else {
				for j := range len(wsUpgrade) - 1 {
					if _, err := c.Write([]byte{wsUpgrade[j]}); err != nil {
						break
					}
					time.Sleep(50 * time.Millisecond) // the slow client being simulated
				}
			}
			io.Copy(io.Discard, c) // until the server cuts it
			hsCut <- time.Since(start)
		})
	}
	hsClients.Wait()
	close(hsCut)
	var cutAt latencies
	for d := range hsCut {
		cutAt = append(cutAt, d)
	}
	if early := cutAt.pct(0); early < handshakeTimeout {
		t.Errorf("a slow handshake was cut after %v, before HandshakeTimeout %v", early, handshakeTimeout)
	}
	if late := cutAt.pct(100); late > handshakeTimeout+5*time.Second {
		t.Errorf("a slow handshake was cut only after %v", late)
	}
	reasons := tally.waitTotal(t, garbage+cut)
	if reasons[supersocket.CloseProtocolError] != garbage || reasons[supersocket.CloseSocketError]+reasons[supersocket.CloseClientClosing] != cut {
		t.Errorf("closes %v; want %d ProtocolError and %d SocketError (or ClientClosing)", fmtReasons(reasons), garbage, cut)
	}
	for i := range cut {
		if _, ok := handled.Load(fmt.Sprintf("cut-%d", i)); ok {
			t.Errorf("the cut frame of client %d was handled", i)
		}
	}
	if n := srv.Stats().Refused; n != 0 {
		t.Errorf("%d connections refused: MaxConnections %d was reached", n, halfOpen+100)
	}
	eventually(t, "the handshakes to be counted", func() bool {
		return srv.Stats().HandshakeFailures == uint64(trickle+halfOpen)
	})
	lat := probes.check(t, time.Second)
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("websocket faults: %d garbage → 1002/ProtocolError, %d frames cut by RST (0 handled), %d trickled + %d half-open upgrades cut at %v–%v (HandshakeTimeout %v), no session; %d established WebSocket round trips, lost %d (p99 %v); left %d/%d",
		garbage, cut, trickle, halfOpen, cutAt.pct(0).Round(time.Millisecond), cutAt.pct(100).Round(time.Millisecond), handshakeTimeout,
		len(lat["during"]), probes.lostCount(), lat["during"].pct(99).Round(time.Microsecond), g, fds)
}
