package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/supersocket-go/supersocket/internal/netread"
)

// ErrStartTLSRefused is returned by StartTLS, with the server's reply, when the reply was
// not the go-ahead (its accept function returned false): the connection goes on in
// plaintext.
var ErrStartTLSRefused = errors.New("client: STARTTLS refused")

// tlsUpgrade is a STARTTLS request waiting for its reply (waiter.upgrade).
type tlsUpgrade struct {
	cfg    *tls.Config
	accept func(Message) bool
	// paused is closed once StartTLS has paused the send queue behind its request (or
	// given up). The reply may arrive before that: the reader waits for it, or its
	// Resume could come first and the Pause after it would hold the queue for good
	// (and a handshake could start while other sends still write plaintext).
	paused chan struct{}
}

// Test hooks: after StartTLS sent its request, before it pauses the queue; when the
// reader takes a STARTTLS reply.
var testHookStartTLSSent, testHookStartTLSReply func()

// switchTLS is a STARTTLS reply the reader has taken and acts on before it reads on.
type switchTLS struct {
	w   *waiter
	msg Message
}

// StartTLS upgrades the connection to TLS in place (STARTTLS; the server side is
// supersocket's Session.StartTLS): it sends parts as a request, like Request, and waits
// for the reply. If accept (nil: any reply) takes the reply as the go-ahead, the client's
// handshake runs over the same socket, bounded by ctx and DialTimeout, before another
// byte is read; sends made meanwhile wait and then leave over TLS. It returns the reply:
// with a nil error once the connection is TLS, with ErrStartTLSRefused when accept
// refused it (the connection stays plaintext), or with the handshake's error (the
// connection is then lost, and redialled under Reconnect, in plaintext: call StartTLS
// again from OnStateChange). Bytes after the go-ahead, before the handshake, are a
// protocol error. cfg.ServerName defaults to Addr's host. Only for TCP, not WebSocket
// or UDP, in FIFO mode (ErrMatchMode with Config.ReplyID). Safe from any goroutine.
func (c *Conn) StartTLS(ctx context.Context, cfg *tls.Config, accept func(reply Message) bool, parts ...[]byte) (Message, error) {
	switch {
	case cfg == nil:
		return Message{}, errors.New("client: StartTLS: nil tls.Config")
	case c.cfg.ReplyID != nil:
		return Message{}, fmt.Errorf("%w: StartTLS needs FIFO matching", ErrMatchMode)
	case c.cfg.udp() || c.cfg.ws != nil:
		return Message{}, errors.New("client: StartTLS: only over plain TCP")
	}
	if err := ctx.Err(); err != nil {
		return Message{}, requestErr(err)
	}
	l, err := c.live()
	if err != nil {
		return Message{}, err
	}
	if l.tls.Load() != nil {
		return Message{}, errors.New("client: StartTLS: the connection already uses TLS")
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(c.cfg.Addr)
	}
	w := newWaiter(0)
	w.upgrade = &tlsUpgrade{cfg: cfg, accept: accept, paused: make(chan struct{})}
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return Message{}, requestErr(ctx.Err())
	}
	if err = l.register(w, false); err == nil {
		if err = l.send(parts, c.cfg.SendTimeout); err != nil {
			l.unregister(w, false)
		} else {
			if testHookStartTLSSent != nil {
				testHookStartTLSSent()
			}
			// What was queued before, the request included, leaves in plaintext; what
			// is queued from now on waits for the reader's verdict (Resume).
			l.q.Pause()
		}
	}
	close(w.upgrade.paused) // the reader may see the reply only once w is registered
	<-l.turn
	if err != nil {
		return Message{}, err
	}
	// The reader answers only after the handshake: ctx may not cut it short, or a
	// caller gone would leave the queue paused. The handshake is bounded by DialTimeout.
	return w.take()
}

// startTLS is the reader's part of StartTLS, once the reply has arrived and nothing
// after it: the handshake (or not, if refused), then the queue goes on. It returns the
// reader of what comes next, and an error that ends the link.
func (l *link) startTLS(sw *switchTLS, rd *netread.Reader) (*netread.Reader, error) {
	up := sw.w.upgrade
	if testHookStartTLSReply != nil {
		testHookStartTLSReply()
	}
	<-up.paused
	defer l.q.Resume()
	if up.accept != nil && !up.accept(sw.msg) {
		l.answer(sw.w, result{msg: sw.msg, err: fmt.Errorf("%w: %q", ErrStartTLSRefused, sw.msg.Frame)})
		return rd, nil
	}
	tc := tls.Client(l.conn, up.cfg)
	l.conn.SetDeadline(time.Now().Add(l.c.cfg.DialTimeout))
	err := tc.Handshake()
	if err != nil {
		err = fmt.Errorf("client: STARTTLS handshake: %w", err)
		l.answer(sw.w, result{msg: sw.msg, err: err})
		return rd, err
	}
	l.conn.SetWriteDeadline(time.Time{})
	l.clearReadDeadline()
	l.tls.Store(tc)
	l.answer(sw.w, result{msg: sw.msg})
	return netread.New(tc), nil
}

// answer hands r to w.
func (l *link) answer(w *waiter, r result) {
	l.mu.Lock()
	l.answerLocked(w, r)
	l.mu.Unlock()
}

// clearReadDeadline lifts the handshake's read deadline, unless a failure or a Close has
// set its own meanwhile (fail and readOn are ordered with this by mu).
func (l *link) clearReadDeadline() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause == nil && l.c.ctx.Err() == nil {
		l.conn.SetReadDeadline(time.Time{})
	}
}

// stream is what requests are written to and the graceful close half-closes: the
// socket, or TLS over it after StartTLS.
func (l *link) stream() net.Conn {
	if tc := l.tls.Load(); tc != nil {
		return tc
	}
	return l.conn
}

// TLS returns the TLS state of the live connection (dialled with Config.TLS, or upgraded
// by StartTLS), or nil when it is plaintext or there is none. Safe from any goroutine.
func (c *Conn) TLS() *tls.ConnectionState {
	l := c.cur.Load()
	if l == nil {
		return nil
	}
	if tc, ok := l.stream().(*tls.Conn); ok {
		cs := tc.ConnectionState()
		return &cs
	}
	return nil
}
