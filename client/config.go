package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// Config configures a Conn. Addr and Filter are required; every other zero field means
// "the default".
type Config struct {
	// Network is "tcp" (default), "tcp4", "tcp6", "udp", "udp4" or "udp6".
	Network string
	// Addr is the server's host:port, or a WebSocket URL: "ws://host[:port]/path[?query]"
	// (default port 80), or "wss://…" (WebSocket over TLS, default port 443; TLS applies,
	// and a nil TLS means the system's roots). Over WebSocket each Send is one message,
	// and each message received holds whole frames for the filter (see the package
	// documentation); WebSocket configures the handshake.
	Addr string
	// WebSocket configures the opening handshake and the messages of a ws:// or wss://
	// Addr. Not allowed with another Addr.
	WebSocket WebSocketConfig
	// Filter makes the receive filter that decodes what the server sends, one per
	// connection. Required.
	Filter filter.Factory
	// MaxRequestLength is the largest frame the client accepts from the server; a longer
	// one is a protocol error. Default 64 KiB.
	MaxRequestLength int

	// Proxy, when set, sends a PROXY protocol header as each connection's first bytes
	// (see ProxyHeader). TCP only.
	Proxy *ProxyHeader

	// TLS, when set, runs TLS over TCP with this configuration. If its ServerName is empty
	// it is taken from Addr. Not allowed with UDP.
	TLS *tls.Config
	// DialTimeout bounds each dial, TLS handshake included. Default 10s.
	DialTimeout time.Duration

	// SendQueueSize bounds the send queue in messages. Default 1024. (TCP only.)
	SendQueueSize int
	// SendQueueBytes bounds the send queue in bytes; a larger message is accepted only
	// into an empty queue. Default 1 MiB. (TCP only.)
	SendQueueBytes int
	// SendTimeout is how long Send (and Request) wait for room in a full queue before
	// ErrSendTimeout. Default 5s; negative: Send does not wait.
	SendTimeout time.Duration
	// CloseLinger bounds a graceful Close over TCP: the time queued bytes have to leave,
	// and then for the server to close its side after the client's (see Close). Default
	// 5s; negative: Close drops queued bytes and closes at once.
	CloseLinger time.Duration

	// ReplyID, when set, switches reply matching from FIFO order to ids: it returns the id
	// a reply carries, or ok=false for a pushed message. Requests are then sent with
	// RequestID. A reply whose id no request waits for (it gave up) is dropped, so an id
	// should not be reused while a late reply to it may still come. It runs on the reader
	// goroutine and must be fast.
	ReplyID func(m Message) (id uint64, ok bool)
	// IsPush, in FIFO mode, reports that a message is pushed by the server rather than a
	// reply, so that it never takes the place of a Request's reply. Optional; it runs on
	// the reader goroutine and must be fast.
	IsPush func(m Message) bool
	// OnMessage, when set, receives every pushed message, in order, on the reader
	// goroutine (see the package documentation for what it must not do). When nil,
	// pushed messages queue for Receive.
	OnMessage func(m Message)
	// ReceiveQueueSize bounds the pushed messages waiting for Receive. When the queue is
	// full the reader waits for Receive, and so stops reading: no message is dropped, and
	// the server feels the back-pressure. Set OnMessage to discard pushes instead.
	// Default 1024.
	ReceiveQueueSize int

	// OnStateChange, when set, is told each change of State, in order: StateConnected for
	// each connection (the first from Dial, before it returns), StateReconnecting when a
	// connection is lost and Reconnect is set, and StateClosed last, exactly once. Later
	// calls run on the reader goroutine, with the same rules as OnMessage.
	OnStateChange func(s State)

	// Reconnect redials a lost connection, with exponential backoff and jitter between
	// attempts, until it succeeds or Close is called. Dial itself does not retry.
	Reconnect bool
	// MinBackoff is the wait before the first redial; it doubles after each attempt, up
	// to MaxBackoff, and each wait is drawn at random between half of it and all of it.
	// It starts again from MinBackoff only after a connection that stayed up for
	// MaxBackoff, so a server that accepts and drops connections at once is not
	// hammered. Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration

	// Logger receives the client's logs (connection lost, reconnected, dropped replies).
	// Default slog.Default().
	Logger *slog.Logger

	ws *wsTarget // the parsed ws:// or wss:// Addr, set by withDefaults
}

// Defaults.
const (
	DefaultMaxRequestLength = 64 << 10
	DefaultDialTimeout      = 10 * time.Second
	DefaultSendQueueSize    = 1024
	DefaultSendQueueBytes   = 1 << 20
	DefaultSendTimeout      = 5 * time.Second
	DefaultCloseLinger      = 5 * time.Second
	DefaultReceiveQueueSize = 1024
	DefaultMinBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff       = 10 * time.Second
)

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field   string // the Config field, e.g. "Addr"
	Problem string
}

// Error says which field is wrong and why.
func (e *ConfigError) Error() string {
	return "client: config: " + e.Field + ": " + e.Problem
}

func bad(field, format string, args ...any) error {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// withDefaults validates c and returns a copy with every default filled in.
func (c Config) withDefaults() (Config, error) {
	switch c.Network {
	case "":
		c.Network = "tcp"
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return c, bad("Network", "%q is not tcp, tcp4, tcp6, udp, udp4 or udp6", c.Network)
	}
	if isWebSocketURL(c.Addr) {
		if err := c.webSocketDefaults(); err != nil {
			return c, err
		}
	} else if !c.WebSocket.isZero() {
		return c, bad("WebSocket", "set, but Addr %q is not a ws:// or wss:// URL", c.Addr)
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, bad("Addr", "%q is not host:port: %v", c.Addr, err)
	}
	if c.Filter == nil {
		return c, bad("Filter", "a receive filter is required")
	}
	if c.TLS != nil && c.udp() {
		return c, bad("TLS", "TLS is not available over %s", c.Network)
	}
	if c.Proxy != nil {
		if c.udp() {
			return c, bad("Proxy", "a PROXY header needs TCP, not %s", c.Network)
		}
		if err := c.Proxy.check(); err != nil {
			return c, err
		}
	}
	if c.ReplyID != nil && c.IsPush != nil {
		return c, bad("IsPush", "only for FIFO matching; with ReplyID, return ok=false for a pushed message")
	}
	positive := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxRequestLength", &c.MaxRequestLength, DefaultMaxRequestLength},
		{"SendQueueSize", &c.SendQueueSize, DefaultSendQueueSize},
		{"SendQueueBytes", &c.SendQueueBytes, DefaultSendQueueBytes},
		{"ReceiveQueueSize", &c.ReceiveQueueSize, DefaultReceiveQueueSize},
	}
	for _, p := range positive {
		switch {
		case *p.v == 0:
			*p.v = p.def
		case *p.v < 0:
			return c, bad(p.name, "must be positive, got %d", *p.v)
		}
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DialTimeout", &c.DialTimeout, DefaultDialTimeout},
		{"MinBackoff", &c.MinBackoff, DefaultMinBackoff},
		{"MaxBackoff", &c.MaxBackoff, DefaultMaxBackoff},
	}
	for _, d := range durations {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return c, bad(d.name, "must be positive, got %v", *d.v)
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		return c, bad("MaxBackoff", "%v is less than MinBackoff %v", c.MaxBackoff, c.MinBackoff)
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.CloseLinger == 0 {
		c.CloseLinger = DefaultCloseLinger
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// name is how errors and logs name the server: network://host:port, or the WebSocket URL.
func (c *Config) name() string {
	if c.ws != nil {
		return c.Addr
	}
	return c.Network + "://" + c.Addr
}

func (c *Config) udp() bool {
	switch c.Network {
	case "udp", "udp4", "udp6":
		return true
	}
	return false
}

// State is where a Conn is in its life.
type State int32

const (
	// StateConnected: a connection is up; sends and requests go out on it.
	StateConnected State = iota
	// StateReconnecting: the connection was lost and Reconnect is redialling; sends and
	// requests fail with ErrNotConnected.
	StateReconnecting
	// StateClosed: Close was called, or the connection was lost without Reconnect. Final.
	StateClosed
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateConnected:
		return "Connected"
	case StateReconnecting:
		return "Reconnecting"
	case StateClosed:
		return "Closed"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Errors. Compare with errors.Is: most are returned wrapped with detail.
var (
	// ErrClosed: the Conn is closed, by Close or, without Reconnect, by the loss of its
	// connection (the error then wraps the cause too).
	ErrClosed = errors.New("client: connection closed")
	// ErrNotConnected: the connection was lost and Reconnect is redialling; try again
	// later.
	ErrNotConnected = errors.New("client: not connected (reconnecting)")
	// ErrConnectionLost is wrapped, with the cause, by the error of a Request that was
	// waiting for its reply when the connection ended.
	ErrConnectionLost = errors.New("client: connection lost")
	// ErrProtocol is wrapped, with the filter's error, by the cause of a connection ended
	// because the server sent bytes the receive filter refused.
	ErrProtocol = errors.New("client: protocol error")
	// ErrSendQueueFull: TrySend found the send queue holding SendQueueSize messages or
	// SendQueueBytes bytes.
	ErrSendQueueFull = errors.New("client: send queue full")
	// ErrSendTimeout: Send waited SendTimeout for room in a full send queue.
	ErrSendTimeout = errors.New("client: send timed out")
	// ErrMatchMode: Request was called with Config.ReplyID set, or RequestID without it.
	ErrMatchMode = errors.New("client: wrong request method for the reply matching configured")
	// ErrDuplicateID: RequestID was called with an id a request is already waiting on.
	ErrDuplicateID = errors.New("client: a request with this id is already waiting")
	// ErrNoReceive: Receive was called though Config.OnMessage takes the pushed messages.
	ErrNoReceive = errors.New("client: Receive: pushed messages go to Config.OnMessage")
)
