package supersocket

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// Config is a server's configuration: SuperSocket's ServerConfig. The zero value of every
// field but Listeners means "the default"; the defaults, and where they differ from
// SuperSocketLite's, are tabled in the README. New validates a Config and names the first
// field that is wrong.
type Config struct {
	// Name names the server in logs. Default "supersocket".
	Name string
	// SessionIDPrefix starts the ID of every session the server makes: the IDs become
	// the prefix followed by a process-wide decimal number ("a-1f0k3-17" for the prefix
	// "a-1f0k3-"). Package cluster sets it so that an ID names its node and no lookup is
	// needed to route to it. Default "": plain numbers. It does not apply to UDP sessions
	// keyed by UDPSessionKey, whose ID is the one their datagrams carry. At most 64
	// bytes, printable ASCII without spaces.
	SessionIDPrefix string
	// Mode is the default transport of the listeners: "tcp" (the default), "udp"
	// (SuperSocket's SocketMode) or "ws" (WebSocket). A listener's own Network overrides
	// it.
	Mode string
	// Listeners are the endpoints to accept on. Start binds all or none. A server
	// without any only connects out (Server.Connect; over UDP, Connect needs a UDP
	// listener to send from).
	Listeners []ListenerConfig
	// Filter makes each session's receive filter. Default filter.CommandLine().
	Filter filter.Factory
	// Engine is how plain TCP listeners serve their sessions: "goroutine" (a goroutine
	// per busy session on Go's netpoller; idle ones park without one) or "epoll" (event
	// loops that own raw sockets; Linux only, elsewhere it falls back to "goroutine" with
	// a logged notice). TLS, UDP and WebSocket listeners, and Connect's sessions, always
	// use the goroutine engine. docs/engines.md compares them. Default: the
	// SUPERSOCKET_ENGINE environment variable when set (the test suite runs on each
	// engine through it), else "goroutine".
	Engine string

	// MaxConnections caps live sessions; the next connection is refused at accept, closed
	// at once, counted and logged, and OnRefused is told. Default 10000.
	MaxConnections int
	// MaxRequestLength is the largest request frame in bytes (header, marks and terminator
	// included); a longer one closes its session with CloseProtocolError. Default 64 KiB.
	MaxRequestLength int
	// ReceiveBufferSize is the size of the pooled buffer one read fills. A session holds a
	// receive buffer only while bytes of an unfinished request are pending. Default 4 KiB.
	ReceiveBufferSize int

	// SendQueueSize bounds a session's send queue in messages. Default 1024.
	SendQueueSize int
	// SendQueueBytes bounds a session's send queue in bytes; a message larger than this is
	// accepted only into an empty queue. Default 1 MiB.
	SendQueueBytes int
	// SendTimeout is how long Send waits for room in a full queue before ErrSendTimeout.
	// Default 5s; negative: Send does not wait, a message that does not fit is dropped
	// (ErrSendQueueFull).
	SendTimeout time.Duration
	// CloseOnSendTimeout closes, with CloseTimeOut, a session whose Send failed for a
	// full queue (after waiting SendTimeout, or at once when SendTimeout is negative);
	// false keeps the session and leaves the decision to the caller. See Session.Send.
	CloseOnSendTimeout bool
	// CloseLinger bounds how long a closing session may spend flushing bytes queued before
	// Close. Default 5s; negative: queued bytes are dropped at Close.
	CloseLinger time.Duration

	// IdleTimeout closes a session with CloseTimeOut when it has neither completed a
	// request nor sent bytes for this long. 0 (the default) turns idle clearing off.
	IdleTimeout time.Duration
	// IdleCheckInterval is how often sessions are checked against IdleTimeout and
	// FirstRequestTimeout; a session is closed within one interval of its deadline.
	// Default a quarter of the shorter timeout, between 10ms and 1s.
	IdleCheckInterval time.Duration

	// HandshakeTimeout bounds a TLS handshake: a TLS listener's, StartTLS's and
	// Connect's with WithTLS. Default 10s.
	HandshakeTimeout time.Duration
	// FirstRequestTimeout closes, with CloseTimeOut, a session that has not completed a
	// request this long after it was accepted: a slowloris client that trickles bytes, or
	// holds a connection open without a word, is cut off even when IdleTimeout is off.
	// 0 (the default) turns it off, since server-push protocols let clients stay silent.
	FirstRequestTimeout time.Duration

	// MaxConnectionsPerIP caps the live sessions of one remote IP address; more are refused
	// like connections past MaxConnections (ErrTooManyFromIP). 0 (the default): no cap,
	// since many clients can share an address behind NAT.
	MaxConnectionsPerIP int
	// AcceptRate limits how many connections per second the listeners accept, with bursts
	// of AcceptBurst (default: AcceptRate rounded up). Connections beyond it wait in the
	// kernel's backlog rather than being refused. 0 (the default): no limit.
	AcceptRate float64
	// AcceptBurst is the accept rate limiter's bucket size.
	AcceptBurst int

	// KeepAlive is the TCP keep-alive period. Default 15s; negative turns it off.
	KeepAlive time.Duration
	// Nagle turns Nagle's algorithm on (TCP_NODELAY off). Default false: small replies
	// leave at once, unlike SuperSocketLite.
	Nagle bool
	// SocketReadBuffer and SocketWriteBuffer set SO_RCVBUF and SO_SNDBUF when positive;
	// 0 leaves the operating system's default.
	SocketReadBuffer, SocketWriteBuffer int

	// AllowConnect, when set, sees each accepted connection's remote address before a
	// session exists; false refuses the connection (SuperSocket's connection filters).
	// It runs on the accept path: it must be fast.
	AllowConnect func(remote net.Addr) bool
	// OnRefused, when set, is told of each refused connection and why (ErrMaxConnections,
	// ErrConnectionNotAllowed). It runs on the accept path: it must be fast.
	OnRefused func(remote net.Addr, why error)

	// UDPSessionKey, when set, keys UDP sessions by an ID carried in each datagram
	// (SuperSocket's UdpRequestInfo) instead of by the sender's address: the session
	// follows its client across address changes, and replies go to the address its latest
	// datagram came from. It returns the ID, or ok=false to drop the datagram. The ID becomes
	// Session.ID. It runs on the socket's read loop: it must be fast, and must not keep
	// the datagram.
	UDPSessionKey func(datagram []byte) (id []byte, ok bool)
	// DatagramQueueSize bounds, per UDP session, the datagrams received and not yet
	// handled; past it datagrams are dropped and counted (Stats.DatagramsDropped), so one
	// slow session never stalls the socket. Default 1024.
	DatagramQueueSize int

	// ObserveRequest, when set, is told how long each Request handler took (panicking
	// ones included), with the request's key: the hook behind request-latency metrics.
	// It runs on the session's goroutine after the handler: it must be fast. Requests of
	// one read are timed back to back, one clock reading each, so a request's time also
	// covers the filtering of its bytes (tens of nanoseconds). Keys come from clients; do
	// not use them as metric labels unchecked.
	ObserveRequest func(key string, elapsed time.Duration)

	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// timers returns the durations the idle scan enforces: IdleTimeout, FirstRequestTimeout,
// and the WebSocket listeners' ping intervals and pong timeouts (0 where off).
func (c *Config) timers() []time.Duration {
	ds := []time.Duration{c.IdleTimeout, c.FirstRequestTimeout}
	for _, l := range c.Listeners {
		if l.WebSocket != nil && l.WebSocket.PingInterval > 0 {
			ds = append(ds, l.WebSocket.PingInterval, l.WebSocket.PongTimeout)
		}
	}
	return ds
}

// timed reports whether the idle scan has anything to enforce.
func (c *Config) timed() bool {
	for _, d := range c.timers() {
		if d > 0 {
			return true
		}
	}
	return false
}

// isUDP reports whether a listener network is a UDP one.
func isUDP(network string) bool { return strings.HasPrefix(network, "udp") }

// ListenerConfig is one endpoint to listen on.
type ListenerConfig struct {
	// Network is "tcp" (IPv4 and IPv6), "tcp4", "tcp6", "udp", "udp4", "udp6", or "ws"
	// (WebSocket over TCP; with TLS, wss). Default: Config.Mode.
	Network string
	// Addr is host:port; port 0 picks a free port (see Server.Addrs). It may be empty
	// when Listener, PacketConn or File gives the socket.
	Addr string
	// Listener, when set, is accepted on instead of binding Addr (a TCP, TLS or "ws"
	// listener). The server closes it when it stops, so it serves one Start; a later
	// Start fails. Config.KeepAlive and socket options apply as the listener was made.
	Listener net.Listener
	// PacketConn, when set, is a UDP listener's socket instead of binding Addr; it must
	// be a *net.UDPConn. Like Listener, it serves one Start.
	PacketConn net.PacketConn
	// File, when set, is an inherited socket, already bound (and listening, for TCP):
	// systemd's socket activation (see InheritedFiles) or a restart's hand-over. Start
	// makes the listener from a duplicate of it, so the server may stop and start again;
	// the File stays the caller's to close. To pass a socket on to another process
	// (exec.Cmd.ExtraFiles), do not use a file from net's File methods: exec takes its
	// descriptor with Fd, which then switches the socket — shared by every descriptor
	// of it, in every process — to blocking mode, and a blocked accept outlives the
	// listener's Close. Make it with os.NewFile from a duplicated descriptor.
	File *os.File
	// TLS, when set, serves TLS on this TCP listener: the handshake runs on the
	// session's goroutine, off the accept path, bounded by HandshakeTimeout, and a failed
	// handshake creates no session.
	TLS *TLSConfig
	// WebSocket configures a "ws" listener; nil takes WebSocketConfig's defaults. On a
	// TCP listener with Detect, it turns the detection of WebSocket upgrades on.
	WebSocket *WebSocketConfig
	// Proxy, when set, reads the PROXY protocol header a load balancer sends before the
	// connection's first byte, from trusted proxies only (see ProxyConfig). TCP only.
	Proxy *ProxyConfig
	// Detect, when set, serves several protocols on this port: TLS (with TLS set),
	// WebSocket (with WebSocket set, or Network "ws") and the raw protocol, told apart by
	// each connection's first bytes (see DetectConfig). TCP only.
	Detect *DetectConfig
}

// Engines (Config.Engine).
const (
	EngineGoroutine = "goroutine"
	EngineEpoll     = "epoll"
)

// engineEnv names the environment variable that sets the default Engine.
const engineEnv = "SUPERSOCKET_ENGINE"

// defaultEngine is the Engine of a Config that names none: the environment's choice,
// read once, so that a whole test suite runs on either engine (SUPERSOCKET_ENGINE=epoll
// go test ./...). Validated with the Config.
var defaultEngine = os.Getenv(engineEnv)

// Defaults.
const (
	DefaultName              = "supersocket"
	DefaultMaxConnections    = 10000
	DefaultMaxRequestLength  = 64 << 10
	DefaultReceiveBufferSize = 4 << 10
	DefaultSendQueueSize     = 1024
	DefaultSendQueueBytes    = 1 << 20
	DefaultSendTimeout       = 5 * time.Second
	DefaultCloseLinger       = 5 * time.Second
	DefaultKeepAlive         = 15 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultDatagramQueueSize = 1024
)

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field   string // the Config field, e.g. "MaxConnections" or "Listeners[1].Addr"
	Problem string
}

// Error says which field is wrong and why.
func (e *ConfigError) Error() string {
	return "supersocket: config: " + e.Field + ": " + e.Problem
}

func configError(field, format string, args ...any) error {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// withDefaults validates c and returns a copy with every default filled in.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if len(c.SessionIDPrefix) > 64 {
		return c, configError("SessionIDPrefix", "at most 64 bytes, got %d", len(c.SessionIDPrefix))
	}
	for _, b := range []byte(c.SessionIDPrefix) {
		if b <= ' ' || b > '~' {
			return c, configError("SessionIDPrefix", "%q: only printable ASCII without spaces", c.SessionIDPrefix)
		}
	}
	switch c.Mode {
	case "":
		c.Mode = "tcp"
	case "tcp", "udp", "ws":
	default:
		return c, configError("Mode", "%q is not tcp, udp or ws", c.Mode)
	}
	c.Listeners = append([]ListenerConfig(nil), c.Listeners...)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		field := fmt.Sprintf("Listeners[%d]", i)
		switch l.Network {
		case "":
			l.Network = c.Mode
		case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "ws":
		default:
			return c, configError(field+".Network", "%q is not tcp, tcp4, tcp6, udp, udp4, udp6 or ws", l.Network)
		}
		switch {
		case l.WebSocket != nil && l.Network != "ws" && (l.Detect == nil || isUDP(l.Network)):
			return c, configError(field+".WebSocket", "set on a %s listener; WebSocket needs Network \"ws\" (or Detect)", l.Network)
		case l.Network == "ws" || l.WebSocket != nil:
			var ws WebSocketConfig
			if l.WebSocket != nil {
				ws = *l.WebSocket
			}
			resolved, err := ws.withDefaults(field + ".WebSocket")
			if err != nil {
				return c, err
			}
			l.WebSocket = &resolved
		}
		given, err := l.givenDefaults(field)
		if err != nil {
			return c, err
		}
		if !given || l.Addr != "" {
			_, port, err := net.SplitHostPort(l.Addr)
			if err != nil {
				return c, configError(field+".Addr", "%q is not host:port: %v", l.Addr, err)
			}
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				return c, configError(field+".Addr", "%q: port %q is not a number from 0 to 65535", l.Addr, port)
			}
		}
		if l.TLS != nil && isUDP(l.Network) {
			return c, configError(field+".TLS", "TLS needs a TCP listener, not %s", l.Network)
		}
		if err := l.frontDefaults(field); err != nil {
			return c, err
		}
	}
	if c.Filter == nil {
		c.Filter = filter.CommandLine()
	}
	field := "Engine"
	if c.Engine == "" {
		c.Engine, field = defaultEngine, "Engine (from "+engineEnv+")"
	}
	switch c.Engine {
	case "":
		c.Engine = EngineGoroutine
	case EngineGoroutine, EngineEpoll:
	default:
		return c, configError(field, "%q is not goroutine or epoll", c.Engine)
	}
	positive := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxConnections", &c.MaxConnections, DefaultMaxConnections},
		{"MaxRequestLength", &c.MaxRequestLength, DefaultMaxRequestLength},
		{"ReceiveBufferSize", &c.ReceiveBufferSize, DefaultReceiveBufferSize},
		{"SendQueueSize", &c.SendQueueSize, DefaultSendQueueSize},
		{"SendQueueBytes", &c.SendQueueBytes, DefaultSendQueueBytes},
		{"DatagramQueueSize", &c.DatagramQueueSize, DefaultDatagramQueueSize},
	}
	for _, p := range positive {
		switch {
		case *p.v == 0:
			*p.v = p.def
		case *p.v < 0:
			return c, configError(p.name, "must be positive, got %d", *p.v)
		}
	}
	if c.ReceiveBufferSize < 64 || c.ReceiveBufferSize > 1<<30 {
		return c, configError("ReceiveBufferSize", "must be from 64 bytes to 1 GiB, got %d", c.ReceiveBufferSize)
	}
	if c.SocketReadBuffer < 0 {
		return c, configError("SocketReadBuffer", "must not be negative, got %d", c.SocketReadBuffer)
	}
	if c.SocketWriteBuffer < 0 {
		return c, configError("SocketWriteBuffer", "must not be negative, got %d", c.SocketWriteBuffer)
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.CloseLinger == 0 {
		c.CloseLinger = DefaultCloseLinger
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	switch {
	case c.HandshakeTimeout == 0:
		c.HandshakeTimeout = DefaultHandshakeTimeout
	case c.HandshakeTimeout < 0:
		return c, configError("HandshakeTimeout", "must not be negative, got %v", c.HandshakeTimeout)
	}
	if c.FirstRequestTimeout < 0 {
		return c, configError("FirstRequestTimeout", "must not be negative (0 turns it off), got %v", c.FirstRequestTimeout)
	}
	if c.MaxConnectionsPerIP < 0 {
		return c, configError("MaxConnectionsPerIP", "must not be negative (0: no cap), got %d", c.MaxConnectionsPerIP)
	}
	switch {
	case c.AcceptRate < 0:
		return c, configError("AcceptRate", "must not be negative (0: no limit), got %v", c.AcceptRate)
	case c.AcceptBurst < 0:
		return c, configError("AcceptBurst", "must not be negative, got %d", c.AcceptBurst)
	case c.AcceptRate > 0 && c.AcceptBurst == 0:
		c.AcceptBurst = max(1, int(c.AcceptRate+0.999))
	}
	if c.IdleTimeout < 0 {
		return c, configError("IdleTimeout", "must not be negative (0 turns idle clearing off), got %v", c.IdleTimeout)
	}
	switch {
	case c.IdleCheckInterval < 0:
		return c, configError("IdleCheckInterval", "must not be negative, got %v", c.IdleCheckInterval)
	case c.IdleCheckInterval == 0 && c.timed():
		var shortest time.Duration
		for _, d := range c.timers() {
			if d > 0 && (shortest == 0 || d < shortest) {
				shortest = d
			}
		}
		c.IdleCheckInterval = min(max(shortest/4, 10*time.Millisecond), time.Second)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
