package supersocket

import (
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/sendq"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// maxStackParts is how many parts of a message Send frames without a heap slice.
const maxStackParts = 8

// send frames parts as one message (text or binary, as the session says), compressed
// when negotiated and large enough, and queues header and payload as one queue message,
// so a message's frame is never split by another's.
func (w *wsConn[T]) send(parts [][]byte, wait time.Duration) error {
	text := w.text.Load()
	var local [maxStackParts + 1][]byte
	if text && w.cfg.Lines {
		var trimmed [maxStackParts][]byte
		parts = trimLineEnding(append(trimmed[:0], parts...))
	}
	n := sendq.Size(parts)
	op := websocket.OpBinary
	if text {
		op = websocket.OpText
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
	var rsv uint8
	var compressed []byte
	if w.info.Compressed && n >= w.cfg.CompressionThreshold {
		compressed = deflate(parts, n)
		parts, n, rsv = [][]byte{compressed}, len(compressed), websocket.Rsv1
	}
	var hb [websocket.MaxHeaderLen]byte
	local[0] = websocket.AppendHeader(hb[:0], true, rsv, op, n, nil)
	var gathered []byte
	if len(parts) > maxStackParts {
		gathered = pool.Get(n)[:0]
		for _, p := range parts {
			gathered = append(gathered, p...)
		}
		parts = [][]byte{gathered}
	}
	framed := local[:1+copy(local[1:], parts)]
	err := w.st.sendFramed(framed, wait)
	if gathered != nil {
		pool.Put(gathered)
	}
	if compressed != nil {
		pool.Put(compressed)
	}
	return err
}

// trimLineEnding drops one trailing "\n", and a "\r" before it, from the message parts
// make, which it may modify (they are the caller's copy of the slice headers).
func trimLineEnding(parts [][]byte) [][]byte {
	trim := func(c byte) bool {
		for len(parts) > 0 && len(parts[len(parts)-1]) == 0 {
			parts = parts[:len(parts)-1]
		}
		if len(parts) == 0 {
			return false
		}
		last := parts[len(parts)-1]
		if last[len(last)-1] != c {
			return false
		}
		parts[len(parts)-1] = last[:len(last)-1]
		return true
	}
	if trim('\n') {
		trim('\r')
	}
	return parts
}

// sendControl queues a control frame (a pong, a ping). It never waits: a full queue
// drops it, as the client will ask again or time out.
func (w *wsConn[T]) sendControl(op websocket.Opcode, payload []byte) {
	frame := w.frame(op, payload)
	w.ctrl.Add(int64(len(frame[0]) + len(payload)))
	if w.st.queue.Push(frame) != nil {
		w.ctrl.Add(-int64(len(frame[0]) + len(payload)))
	}
}

// frame returns a control frame's header and payload as a queue message.
func (w *wsConn[T]) frame(op websocket.Opcode, payload []byte) [][]byte {
	return [][]byte{websocket.AppendHeader(make([]byte, 0, websocket.MaxHeaderLen), true, 0, op, len(payload), nil), payload}
}

// activity reports whether writing n bytes was more than the control frames queued: a
// write of control frames alone is no sign of the application's activity.
func (w *wsConn[T]) activity(n int64) bool {
	for {
		c := w.ctrl.Load()
		if c == 0 {
			return true
		}
		if w.ctrl.CompareAndSwap(c, max(c-n, 0)) {
			return n > c
		}
	}
}

// pingIdle pings the session if it has sent nothing for PingInterval, and closes it
// with CloseTimeOut if an earlier ping went unanswered for PongTimeout. The server's
// idle scan calls it.
func (w *wsConn[T]) pingIdle(now time.Time) {
	if w.cfg.PingInterval <= 0 || w.st.s.closed.Load() != 0 {
		return
	}
	if p := w.pinged.Load(); p != 0 {
		if now.UnixNano()-p >= int64(w.cfg.PongTimeout) {
			w.st.s.srv.log.Debug("websocket ping unanswered; closing session", "session", w.st.s.id)
			w.st.s.Close(CloseTimeOut)
		}
		return
	}
	if now.UnixNano()-w.heard.Load() >= int64(w.cfg.PingInterval) && w.pinged.CompareAndSwap(0, now.UnixNano()) {
		w.sendControl(websocket.OpPing, nil)
	}
}
