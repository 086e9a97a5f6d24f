package client

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/sendq"
	"github.com/supersocket-go/supersocket/internal/websocket"
	"github.com/supersocket-go/supersocket/internal/wsclient"
)

// goodbyeTimeout bounds the wait for a close frame the reader sends (an answer to the
// server's, or a protocol error's) to be written before the connection closes.
const goodbyeTimeout = time.Second

// wsLink is a link's WebSocket layer (link.ws): between the socket's bytes and the
// filter it turns frames into messages, each handed to the filter as one unit of whole
// requests; between Send and the send queue it turns messages into masked frames.
//
// The close handshake: Close queues a close frame (1000) after what is queued and the
// reader reads on, delivering replies, until the server's close frame arrives, within
// CloseLinger. When the server closes first, the reader drops what is still queued,
// answers with the server's code, and the connection ends with a *CloseError.
type wsLink struct {
	rd          *wsclient.Reader // the reader's only
	op          websocket.Opcode // the opcode of Send's messages
	initial     []byte           // bytes that came after the handshake's response
	subprotocol string
	closing     atomic.Bool // Close queued our close frame: the server's next one ends the handshake
}

// sendWS queues parts as one masked message (see link.send).
func (l *link) sendWS(parts [][]byte, wait time.Duration) error {
	if l.ws.op == websocket.OpText {
		var v websocket.UTF8
		for _, p := range parts {
			if !v.Write(p) {
				return ErrInvalidUTF8
			}
		}
		if !v.Complete() {
			return ErrInvalidUTF8
		}
	}
	n := sendq.Size(parts)
	f := wsclient.AppendFrame(pool.Get(wsclient.FrameLen(n))[:0], true, l.ws.op, parts...)
	err := l.q.Wait([][]byte{f}, wait)
	pool.Put(f)
	return l.queued(err)
}

// closeWS is link.close for a WebSocket: the close frame goes after what is queued, then
// the reader reads on until the server's close frame, both within linger.
func (l *link) closeWS(linger time.Duration) {
	deadline := time.Now().Add(linger)
	l.ws.closing.Store(true)
	l.conn.SetWriteDeadline(deadline)
	l.q.CloseWith([][]byte{wsclient.AppendClose(nil, websocket.CloseNormal, "")})
	l.q.WaitIdle()
	if !l.readOn(deadline) { // read on until the server's close frame
		l.conn.SetReadDeadline(aLongTimeAgo)
	}
}

// goodbye sends a close frame with code as the link's last bytes, dropping what is still
// queued, and waits (bounded) for it to be written.
func (l *link) goodbye(code websocket.CloseCode) {
	l.q.Discard()
	l.conn.SetWriteDeadline(time.Now().Add(goodbyeTimeout))
	l.q.CloseWith([][]byte{wsclient.AppendClose(nil, code, "")})
	l.q.WaitIdle()
}

// serveWS reads and decodes until the link ends, and returns why; the bytes that came
// with the handshake's response are the first.
func (l *link) serveWS() error {
	var pending []byte
	if in := l.ws.initial; len(in) > 0 {
		l.ws.initial = nil
		pending = append(pool.Get(max(readSize, len(in)))[:0], in...)
	}
	return l.readStream(pending, l.processWS)
}

// processWS handles every complete frame in buf and returns what is left, as process
// does, in a buffer with room for the whole frame the reader waits for.
func (l *link) processWS(buf []byte) ([]byte, error) {
	data := buf
	for len(data) > 0 {
		f, n, err := l.ws.rd.Next(data)
		if err != nil {
			var pe *websocket.ProtocolError
			errors.As(err, &pe) // the Reader's errors are all ProtocolErrors
			l.goodbye(pe.Code)
			return buf, protocolErr(err)
		}
		if n == 0 {
			break
		}
		data = data[n:]
		if err := l.frameWS(&f); err != nil {
			return buf, err
		}
	}
	if len(data) == 0 {
		pool.Put(buf)
		return nil, nil
	}
	return pool.Compact(buf, data, l.ws.rd.Need(), l.c.cfg.MaxRequestLength+websocket.MaxHeaderLen), nil
}

// frameWS handles one frame the Reader returned.
func (l *link) frameWS(f *wsclient.Frame) error {
	switch f.Op {
	case websocket.OpText, websocket.OpBinary:
		return l.message(f.Payload)
	case websocket.OpPing:
		if !l.ws.closing.Load() {
			// Never waits: with the queue full the pong is dropped, and the server
			// pings again or gives up.
			l.q.Push([][]byte{wsclient.AppendFrame(nil, true, websocket.OpPong, f.Payload)})
		}
	case websocket.OpClose:
		if l.ws.closing.Load() {
			return errStopped // the server's answer to our close frame: done
		}
		l.goodbye(f.Code) // echo the server's code (none, for a frame without one)
		return &CloseError{Code: int(f.Code), Reason: f.Reason}
	}
	return nil // a pong, or a fragment of a message still to come
}

// message hands the requests of one message to deliver: the message holds whole
// requests, the last of which may lack its terminator if the filter is a Finisher.
func (l *link) message(msg []byte) error {
	for len(msg) > 0 {
		req, n, err := l.decode(msg)
		if err == nil && n == 0 {
			req, n, err = l.finish(msg)
		}
		if err != nil {
			code := websocket.CloseProtocolError
			if !errors.Is(err, ErrProtocol) {
				code = websocket.CloseInternalError // the filter is at fault, not the server
			}
			l.goodbye(code)
			return err
		}
		if !l.deliver(req) {
			return errStopped
		}
		msg = msg[n:]
	}
	return nil
}
