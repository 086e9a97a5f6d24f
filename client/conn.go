package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// Conn is a client connection to a server. Its methods are safe to call from any
// goroutine, except that Close must not be called from OnMessage or OnStateChange (see the
// package documentation).
type Conn struct {
	cfg Config
	log *slog.Logger

	cur   atomic.Pointer[link] // the live connection; nil while reconnecting and once closed
	state atomic.Int32         // a State

	mu      sync.Mutex // guards closing and err, and orders Close against installing a link
	closing bool       // no new link may be installed
	err     error      // why the Conn closed, wrapping ErrClosed; nil while it is open

	ctx    context.Context // ends when the Conn closes: stops redials and the reader's waits
	cancel context.CancelFunc
	done   chan struct{} // closed once every goroutine of the Conn has ended

	inbox   chan Message   // pushed messages for Receive, when OnMessage is nil
	writers sync.WaitGroup // writer goroutines
}

// Dial connects to cfg.Addr and returns the Conn, or an error: a *ConfigError naming the
// first invalid Config field, or the dial's (TLS handshake included) error. Dial makes one
// attempt, bounded by ctx and DialTimeout; ctx does not outlive Dial.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Conn{
		cfg:  cfg,
		log:  cfg.Logger.With("client", cfg.name()),
		done: make(chan struct{}),
	}
	if cfg.OnMessage == nil {
		c.inbox = make(chan Message, cfg.ReceiveQueueSize)
	}
	l, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.cur.Store(l)
	c.setState(StateConnected)
	go c.run(l)
	return c, nil
}

// dial makes one connection, with a fresh receive filter.
func (c *Conn) dial(ctx context.Context) (*link, error) {
	f, err := c.newFilter()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var nc net.Conn
	switch {
	case c.cfg.Proxy != nil:
		nc, err = c.dialProxied(ctx)
	case c.cfg.TLS != nil:
		d := tls.Dialer{Config: c.cfg.TLS}
		nc, err = d.DialContext(ctx, c.cfg.Network, c.cfg.dialAddr())
	default:
		var d net.Dialer
		nc, err = d.DialContext(ctx, c.cfg.Network, c.cfg.dialAddr())
	}
	if err != nil && c.cfg.ws == nil {
		return nil, fmt.Errorf("client: dial %s %s: %w", c.cfg.Network, c.cfg.Addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", c.cfg.Addr, err)
	}
	if c.cfg.ws == nil {
		return newLink(c, nc, f), nil
	}
	ws, err := c.upgrade(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: dial %s: %w", c.cfg.Addr, err)
	}
	l := newLink(c, nc, f)
	l.ws = ws
	return l, nil
}

// dialProxied dials, sends the PROXY header, then makes the TLS handshake, if any.
func (c *Conn) dialProxied(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, c.cfg.Network, c.cfg.dialAddr())
	if err != nil {
		return nil, err
	}
	if err = c.sendProxy(ctx, nc); err == nil && c.cfg.TLS != nil {
		cfg := c.cfg.TLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(c.cfg.dialAddr())
		}
		tc := tls.Client(nc, cfg)
		if err = tc.HandshakeContext(ctx); err == nil {
			return tc, nil
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

func (c *Conn) newFilter() (f filter.Filter, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("client: the filter factory panicked: %v", p)
		}
	}()
	if f = c.cfg.Filter(c.cfg.MaxRequestLength); f == nil {
		return nil, errors.New("client: the filter factory returned nil")
	}
	return f, nil
}

// run is the Conn's goroutine: it reads the live connection until it ends, then redials
// or closes the Conn.
func (c *Conn) run(l *link) {
	delay := c.cfg.MinBackoff // the first wait of the next redial
	for {
		up := time.Now()
		cause := l.serve()
		c.mu.Lock()
		graceful := c.closing // Close was called: flush, then close
		final := graceful || !c.cfg.Reconnect
		if final {
			c.closing = true
			if c.err == nil {
				c.err = fmt.Errorf("%w: %w", ErrClosed, cause)
			}
		}
		c.mu.Unlock()
		if !graceful {
			c.log.Info("connection lost", "err", cause, "reconnect", !final)
		}
		l.end(graceful, cause)
		c.cur.Store(nil)
		if final {
			break
		}
		c.setState(StateReconnecting)
		if time.Since(up) >= c.cfg.MaxBackoff {
			delay = c.cfg.MinBackoff
		}
		if l, delay = c.redial(delay); l == nil {
			break
		}
		c.log.Info("reconnected", "local", l.conn.LocalAddr().String())
		c.setState(StateConnected)
	}
	c.cancel()
	c.writers.Wait()
	c.setState(StateClosed)
	close(c.done)
}

// redial dials with backoff, starting with delay, until a connection is installed
// (returned) or the Conn closes (nil). It also returns the wait to start from if this
// connection is lost soon: a server that accepts and drops connections at once is
// redialled no faster than one that refuses them.
func (c *Conn) redial(delay time.Duration) (*link, time.Duration) {
	for {
		wait := delay/2 + rand.N(delay/2+1)
		delay = min(2*delay, c.cfg.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil, delay
		case <-t.C:
		}
		l, err := c.dial(c.ctx)
		if err == nil {
			if c.install(l) {
				return l, delay
			}
			l.conn.Close()
			return nil, delay
		}
		if c.ctx.Err() != nil {
			return nil, delay
		}
		c.log.Debug("redial failed", "err", err, "next", delay)
	}
}

// install makes l the live connection unless the Conn is closing.
func (c *Conn) install(l *link) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.cur.Store(l)
	return true
}

func (c *Conn) setState(s State) {
	c.state.Store(int32(s))
	if f := c.cfg.OnStateChange; f != nil {
		f(s)
	}
}

// live returns the live connection, or the error a call must return without one.
func (c *Conn) live() (*link, error) {
	if l := c.cur.Load(); l != nil {
		return l, nil
	}
	return nil, c.unavailable()
}

// unavailable is the error for a call that found no usable connection.
func (c *Conn) unavailable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return c.err
	case c.closing:
		return ErrClosed
	}
	return ErrNotConnected
}

// Send queues parts as one message, to leave after everything queued before it. The parts
// are copied before Send returns, so the caller may reuse them at once, and they leave
// together whatever other goroutines send meanwhile. While the queue is full Send waits
// (parked, never spinning) up to SendTimeout, then returns ErrSendTimeout; without a
// connection it returns ErrNotConnected or an error wrapping ErrClosed. A nil error means
// the bytes are queued, not that they arrived: if the connection is lost before the writer
// gets to them they are dropped. Over UDP, Send writes one datagram and returns. Safe from
// any goroutine.
func (c *Conn) Send(parts ...[]byte) error {
	l, err := c.live()
	if err != nil {
		return err
	}
	return l.send(parts, c.cfg.SendTimeout)
}

// TrySend is Send that never waits: with the queue full it returns ErrSendQueueFull.
// Safe from any goroutine.
func (c *Conn) TrySend(parts ...[]byte) error {
	l, err := c.live()
	if err != nil {
		return err
	}
	return l.send(parts, 0)
}

// Request sends parts as one message, like Send, and returns the server's reply: in FIFO
// mode (Config.ReplyID unset; otherwise it returns ErrMatchMode), the next message that is
// not a push. Concurrent Requests are pipelined on the connection and each gets its own
// reply.
//
// It returns ctx's error (wrapped) when ctx ends first; the reply, if it comes later, is
// then dropped. It waits for room in the send queue at most SendTimeout and at most until
// ctx's deadline. If the connection ends first it returns an error wrapping
// ErrConnectionLost and the cause (ErrClosed after Close). The parts are copied before
// Request returns; the reply is the caller's. Safe from any goroutine.
func (c *Conn) Request(ctx context.Context, parts ...[]byte) (Message, error) {
	if c.cfg.ReplyID != nil {
		return Message{}, fmt.Errorf("%w: Config.ReplyID is set; use RequestID", ErrMatchMode)
	}
	return c.request(ctx, 0, false, parts)
}

// RequestID is Request for protocols with ids (Config.ReplyID set; otherwise it returns
// ErrMatchMode): parts must carry id, and the reply is the message for which ReplyID
// returns id, whatever order replies arrive in. It returns ErrDuplicateID if a request
// with the same id is still waiting. Safe from any goroutine.
func (c *Conn) RequestID(ctx context.Context, id uint64, parts ...[]byte) (Message, error) {
	if c.cfg.ReplyID == nil {
		return Message{}, fmt.Errorf("%w: Config.ReplyID is not set; use Request", ErrMatchMode)
	}
	return c.request(ctx, id, true, parts)
}

func (c *Conn) request(ctx context.Context, id uint64, byID bool, parts [][]byte) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, requestErr(err)
	}
	l, err := c.live()
	if err != nil {
		return Message{}, err
	}
	wait := c.cfg.SendTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	w := newWaiter(id)
	if byID {
		err = l.register(w, true)
		if err == nil {
			if err = l.send(parts, wait); err != nil {
				l.unregister(w, true)
			}
		}
	} else {
		// Register and queue under the turn, so that replies come back in the order the
		// waiters line up in.
		select {
		case l.turn <- struct{}{}:
		case <-ctx.Done():
			return Message{}, requestErr(ctx.Err())
		}
		err = l.register(w, false)
		if err == nil {
			if err = l.send(parts, wait); err != nil {
				l.unregister(w, false)
			}
		}
		<-l.turn
	}
	if err != nil {
		return Message{}, err
	}
	return l.await(ctx, w, byID)
}

func requestErr(err error) error { return fmt.Errorf("client: request: %w", err) }

// Receive returns the next pushed message: one no Request claimed. It waits until one
// arrives or ctx ends; once the Conn has closed it returns the messages still queued, then
// Err. It returns ErrNoReceive when Config.OnMessage takes pushed messages. The message is
// the caller's. Safe from any goroutine; concurrent callers each get different messages.
func (c *Conn) Receive(ctx context.Context) (Message, error) {
	if c.inbox == nil {
		return Message{}, ErrNoReceive
	}
	select {
	case m := <-c.inbox:
		return m, nil
	default:
	}
	select {
	case m := <-c.inbox:
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-c.done:
		select {
		case m := <-c.inbox:
			return m, nil
		default:
			return Message{}, c.Err()
		}
	}
}

// push hands a pushed message to OnMessage or the Receive queue. It reports false when the
// Conn closed while the queue was full.
func (c *Conn) push(m Message) bool {
	if f := c.cfg.OnMessage; f != nil {
		f(m)
		return true
	}
	select {
	case c.inbox <- m:
		return true
	default:
	}
	select {
	case c.inbox <- m:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// Close closes the Conn. Later calls fail with ErrClosed. Over TCP the close is graceful,
// bounded by CloseLinger: bytes queued before Close are flushed, the client half-closes
// its side (FIN, or TLS close_notify), and replies and pushes keep arriving until the
// server closes its side; so Requests still waiting may get their replies. Those still
// waiting after that fail with ErrClosed, and the socket closes. Close returns once every
// goroutine of the Conn has ended. It is idempotent and returns nil; Err tells why the Conn
// closed. Safe from any goroutine but the one running OnMessage and OnStateChange.
func (c *Conn) Close() error {
	c.mu.Lock()
	first := !c.closing
	c.closing = true
	if c.err == nil {
		c.err = ErrClosed
	}
	l := c.cur.Load()
	c.mu.Unlock()
	if first {
		c.cancel()
		if l != nil {
			l.close(c.cfg.CloseLinger)
		}
	}
	<-c.done
	return nil
}

// Done returns a channel closed once the Conn has closed and its goroutines have ended.
// Safe from any goroutine.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the Conn is open (connected or reconnecting), then why it closed:
// ErrClosed after Close, or an error wrapping ErrClosed and the cause of the connection's
// loss. Safe from any goroutine.
func (c *Conn) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// State returns the Conn's state. Safe from any goroutine.
func (c *Conn) State() State { return State(c.state.Load()) }

// LocalAddr returns the local address of the live connection, nil without one. Safe from
// any goroutine.
func (c *Conn) LocalAddr() net.Addr {
	if l := c.cur.Load(); l != nil {
		return l.conn.LocalAddr()
	}
	return nil
}

// RemoteAddr returns the server's address on the live connection, nil without one. Safe
// from any goroutine.
func (c *Conn) RemoteAddr() net.Addr {
	if l := c.cur.Load(); l != nil {
		return l.conn.RemoteAddr()
	}
	return nil
}
