package loadgen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/supersocket-go/supersocket/internal/websocket"
	"github.com/supersocket-go/supersocket/internal/wsclient"
)

// WebSocket mode (-ws PATH): each connection is upgraded at PATH, each request is one
// masked message (text for -proto line, binary otherwise) and each reply one message,
// checked byte for byte as over TCP. For -proto line a reply may lack its line ending (a
// server in WebSocketConfig.Lines mode drops it).

// handshake returns the opening handshake of -ws, or nil without -ws.
func (o *options) handshake() *wsclient.Handshake {
	if o.wsPath == "" {
		return nil
	}
	return &wsclient.Handshake{Host: o.addr, Target: o.wsPath}
}

// transport names the transport of a run, for the output.
func (o *options) transport() string {
	if o.wsPath != "" {
		return transportWS
	}
	return transportTCP
}

const (
	transportTCP = "tcp"
	transportWS  = "ws"
)

// upgrade makes the opening handshake on c within timeout.
func upgrade(c net.Conn, hs *wsclient.Handshake, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	_, rest, err := hs.Do(c)
	switch {
	case err != nil:
		return err
	case len(rest) > 0:
		return fmt.Errorf("websocket: %d bytes from the server before any request", len(rest))
	}
	return nil
}

// wsOpcode is the opcode of the requests' messages.
func (c *codec) wsOpcode() websocket.Opcode {
	if c.proto == protoLine {
		return websocket.OpText
	}
	return websocket.OpBinary
}

// wsFrameLen is the length of a request's frame over WebSocket.
func (c *codec) wsFrameLen() int { return wsclient.FrameLen(c.reqLen) }

// putWSRequest writes request seq of connection id into dst as one masked frame and
// returns the frame's length.
func (c *codec) putWSRequest(dst []byte, id, seq uint64) int {
	key := wsclient.NewMaskKey()
	hn := len(websocket.AppendHeader(dst[:0], true, 0, c.wsOpcode(), c.reqLen, &key))
	c.putRequest(dst[hn:], id, seq)
	websocket.Mask(key, 0, dst[hn:hn+c.reqLen])
	return hn + c.reqLen
}

// messageOK reports whether msg, one message, is the reply to request seq of
// connection id.
func (c *codec) messageOK(msg []byte, id, seq uint64) bool {
	if c.proto == protoLine && len(msg) == c.size {
		return c.payloadOK(msg, id, seq) // without its line ending
	}
	return len(msg) == c.repLen && c.replyOK(msg, id, seq)
}

// describeMessage says how msg differs from the reply expected for seq.
func (c *codec) describeMessage(msg []byte, id, seq uint64) string {
	if len(msg) != c.repLen {
		return fmt.Sprintf("reply %d: a %d-byte message, want %d bytes", seq, len(msg), c.repLen)
	}
	return c.describeMismatch(msg, id, seq)
}

// wsReplies checks the replies in data, the bytes received and not yet consumed: each
// whole message is the next reply awaited; a ping is answered. It returns the bytes
// consumed and how many replies it counted while recording.
func (lc *loadConn) wsReplies(data []byte, now int64, rec bool) (consumed int, counted int64, ok bool) {
	depth := uint64(lc.depth)
	for {
		f, n, err := lc.ws.Next(data[consumed:])
		if err != nil {
			lc.fail(errMismatch, err)
			return consumed, counted, false
		}
		if n == 0 {
			return consumed, counted, true
		}
		consumed += n
		switch f.Op {
		case websocket.OpText, websocket.OpBinary:
			if lc.recv == lc.sent {
				lc.fail(errMismatch, fmt.Errorf("a %d-byte message beyond the %d replies awaited", len(f.Payload), lc.sent))
				return consumed, counted, false
			}
			if !lc.cd.messageOK(f.Payload, lc.id, lc.recv) {
				lc.fail(errMismatch, errors.New(lc.cd.describeMessage(f.Payload, lc.id, lc.recv)))
				return consumed, counted, false
			}
			if rec {
				lc.hist.record(now - lc.times[lc.recv%depth])
				counted++
			}
			lc.recv++
		case websocket.OpPing:
			if _, err := lc.conn.Write(wsclient.AppendFrame(nil, true, websocket.OpPong, f.Payload)); err != nil {
				lc.ioFailed(err)
				return consumed, counted, false
			}
		case websocket.OpClose:
			lc.fail(errIO, fmt.Errorf("the server closed the WebSocket (%v %q) with %d replies missing", f.Code, f.Reason, lc.sent-lc.recv))
			return consumed, counted, false
		}
	}
}

// exchangeOnceWS is exchangeOnce over a WebSocket.
func exchangeOnceWS(c net.Conn, cd *codec, id uint64, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	req := make([]byte, cd.wsFrameLen())
	if _, err := c.Write(req[:cd.putWSRequest(req, id, 0)]); err != nil {
		return err
	}
	rd := wsclient.NewReader(cd.repLen)
	buf := make([]byte, 0, max(cd.repLen, websocket.MaxControlPayload)+websocket.MaxHeaderLen)
	for {
		f, n, err := rd.Next(buf)
		switch {
		case err != nil:
			return err
		case n > 0 && f.Op == websocket.OpClose:
			return fmt.Errorf("the server closed the WebSocket (%v) before replying", f.Code)
		case n > 0 && f.Op != websocket.OpText && f.Op != websocket.OpBinary:
			buf = buf[:copy(buf, buf[n:])] // a control frame: skip it
			continue
		case n > 0:
			if !cd.messageOK(f.Payload, id, 0) {
				return errors.New(cd.describeMessage(f.Payload, id, 0))
			}
			return c.SetDeadline(time.Time{})
		}
		k, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		switch {
		case k > 0:
		case errors.Is(err, io.EOF):
			return errors.New("server closed the connection before replying")
		case err != nil:
			return err
		}
	}
}
