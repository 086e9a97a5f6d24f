// Package wstest is a raw WebSocket server for tests of WebSocket clients (the client
// package, the load generator): it answers the opening handshake with 101 and hands each
// connection to the test, which writes server frames and reads the client's byte for
// byte — frames no real server sends included (fragments, pings, chosen close codes,
// broken frames).
package wstest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/internal/websocket"
)

// Conn is the server's end of one WebSocket.
type Conn struct {
	net.Conn
	r *bufio.Reader
}

// Serve accepts connections on 127.0.0.1, answers each upgrade request with 101 (and
// the extra header lines, each ending "\r\n") and runs handle on the connection's own
// goroutine, bounded by deadline; a request that is not a valid upgrade fails the test.
// It returns the listener's address. When the test ends it closes the listener and every
// connection and waits for the goroutines.
func Serve(t testing.TB, extra string, deadline time.Duration, handle func(c *Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ServeListener(t, ln, func(nc net.Conn) {
		nc.SetDeadline(time.Now().Add(deadline))
		c := &Conn{Conn: nc, r: bufio.NewReader(nc)}
		if err := c.accept(extra); err != nil {
			t.Errorf("wstest: the client's upgrade: %v", err)
			return
		}
		handle(c)
	})
}

// ServeListener accepts connections on ln and runs handle for each on its own goroutine,
// closing the connection when handle returns; it returns ln's address. When the test
// ends it closes ln and every connection and waits for the goroutines. (Any raw TCP
// server of a test, WebSocket or not.)
func ServeListener(t testing.TB, ln net.Listener, handle func(c net.Conn)) string {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// accept reads the upgrade request and answers 101.
func (c *Conn) accept(extra string) error {
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return err
		}
		head = append(head, line...)
	}
	req, _, herr := websocket.ParseRequest(head, 8192)
	if herr != nil {
		return herr
	}
	u, herr := websocket.CheckUpgrade(req)
	if herr != nil {
		return herr
	}
	_, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "+websocket.AcceptKey(u.Key)+"\r\n"+extra+"\r\n")
	return err
}

// Frame returns a server frame (unmasked).
func Frame(fin bool, op websocket.Opcode, payload []byte) []byte {
	return append(websocket.AppendHeader(nil, fin, 0, op, len(payload), nil), payload...)
}

// Send writes one server frame.
func (c *Conn) Send(fin bool, op websocket.Opcode, payload string) error {
	_, err := c.Write(Frame(fin, op, []byte(payload)))
	return err
}

// SendClose writes a close frame with code and reason.
func (c *Conn) SendClose(code websocket.CloseCode, reason string) error {
	return c.Send(true, websocket.OpClose, string(websocket.AppendClose(nil, code, reason)))
}

// ErrUnmasked is ReadFrame's error for a client frame without a mask.
var ErrUnmasked = errors.New("wstest: a client frame is not masked")

// ReadFrame reads one client frame and returns its header and unmasked payload. A frame
// without a mask is ErrUnmasked (its header and payload are returned too).
func (c *Conn) ReadFrame() (websocket.Header, []byte, error) {
	var hb []byte
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return websocket.Header{}, nil, err
		}
		hb = append(hb, b)
		h, n, err := websocket.ParseHeader(hb, 1<<24)
		if err != nil {
			return h, nil, err
		}
		if n == 0 {
			continue
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, p); err != nil {
			return h, nil, err
		}
		if !h.Masked {
			return h, p, ErrUnmasked
		}
		websocket.Mask(h.Key, 0, p)
		return h, p, nil
	}
}
