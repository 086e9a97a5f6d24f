package cluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/supersocket-go/supersocket"
)

// Config is a node's cluster configuration. The zero value of every field but NodeID
// and one of URL or Conn means "the default".
type Config struct {
	// NodeID names the node: 1 to 32 letters, digits or '_', unique in the cluster. It
	// starts every session ID of the node's server. Required.
	NodeID string
	// URL is the NATS server to join through ("nats://127.0.0.1:4222"; several,
	// comma-separated, for a NATS cluster). The node opens its own connection, with
	// unlimited reconnects, at Start, and closes it when it stops.
	URL string
	// Conn, instead of URL, is a connection the application opened and keeps: the node
	// subscribes on it at Start and unsubscribes when it stops, but never closes it.
	// Give it unlimited reconnects (nats.MaxReconnects(-1)) so that the node survives a
	// NATS restart.
	Conn *nats.Conn
	// NATSOptions are added to the options of the node's own connection (URL): a name,
	// credentials, TLS.
	NATSOptions []nats.Option

	// Prefix starts every subject the cluster uses, and names its KV bucket
	// (Prefix with '.' replaced by '_', then "_users"); clusters that share a NATS
	// need different prefixes. Default "supersocket".
	Prefix string
	// UserTTL bounds how long a user stays bound after its node crashed: the node
	// rewrites each binding every UserTTL/3, and the KV bucket drops a binding not
	// rewritten for UserTTL. Default 15s; at least 300ms.
	UserTTL time.Duration
	// HeartbeatInterval is how often the node tells the others it is alive, with its
	// session count (see Nodes). Default 1s.
	HeartbeatInterval time.Duration
	// NodeTimeout is how long a node may stay silent before Nodes leaves it out.
	// Default 3 × HeartbeatInterval.
	NodeTimeout time.Duration
	// RequestTimeout bounds a cross-node call whose context has no deadline. Default 5s.
	RequestTimeout time.Duration
	// QueryTimeout bounds how long Rooms and Members wait for the other nodes' answers.
	// Default 1s.
	QueryTimeout time.Duration
	// MaxRequests bounds the Request handlers the node runs at once; a request past it
	// fails with ErrBusy. Default 256.
	MaxRequests int
	// MaxInFlight bounds the SendToAsync calls of this node waiting for their verdicts
	// at once (each holds its message until its batch is published, and a small record
	// until the verdict): past it, SendToAsync waits for one to be answered, or for its
	// context to end. Default 8192.
	MaxInFlight int

	// Logger receives the cluster's logs. Default: the server's logger.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultPrefix            = "supersocket"
	DefaultUserTTL           = 15 * time.Second
	DefaultHeartbeatInterval = time.Second
	DefaultRequestTimeout    = 5 * time.Second
	DefaultQueryTimeout      = time.Second
	DefaultMaxRequests       = 256
	DefaultMaxInFlight       = 8192
	minUserTTL               = 300 * time.Millisecond
)

// Handlers are the server's event handlers, which the node wraps, and the cluster's
// own events.
type Handlers[T any] struct {
	supersocket.Handlers[T]
	// Kicked runs when the session loses its user to a newer Bind of the same user on
	// any node, or to KickUser, just before the node closes it with
	// supersocket.CloseServerClosing: the place to tell the client ("you logged in
	// elsewhere"); what it sends is flushed before the socket closes. It runs on a
	// goroutine of the node, concurrently with the session's own handlers (Send and
	// TrySend are safe there), and must be quick: it holds up the node's other
	// cross-node deliveries while it runs. Optional.
	Kicked func(s *supersocket.Session[T], userID string)
	// NodeDown runs when another node is found gone without having left: no heartbeat
	// from it for NodeTimeout (it crashed, or is cut off from NATS), or one from a new
	// incarnation of it (it restarted). Its sessions never closed here, so nobody has
	// told this node's members that its members are gone: gone holds them, by room,
	// for each room that has members on this node, as this node last knew them (sorted
	// by user ID). PublishLocal tells this node's members of a room; every node gets
	// the event for its own members. A node that shuts down or stops says goodbye and
	// is not reported. It runs on a goroutine of the node and must be quick: it holds
	// up the node's heartbeats while it runs. Optional.
	NodeDown func(node NodeInfo, gone map[string][]Member)
}

// Validate reports what is wrong with c, naming the field; New reports the same.
func (c Config) Validate() error {
	_, err := c.withDefaults(slog.Default())
	return err
}

// withDefaults validates c and fills in its defaults; the error names the field.
func (c Config) withDefaults(log *slog.Logger) (Config, error) {
	if err := checkNodeID(c.NodeID); err != nil {
		return c, fmt.Errorf("cluster: config: NodeID: %w", err)
	}
	switch {
	case c.URL == "" && c.Conn == nil:
		return c, fmt.Errorf("cluster: config: URL: a NATS URL or a Conn is required")
	case c.URL != "" && c.Conn != nil:
		return c, fmt.Errorf("cluster: config: URL and Conn: give one, not both")
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return c, fmt.Errorf("cluster: config: Prefix: %w", err)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"UserTTL", &c.UserTTL, DefaultUserTTL},
		{"HeartbeatInterval", &c.HeartbeatInterval, DefaultHeartbeatInterval},
		{"RequestTimeout", &c.RequestTimeout, DefaultRequestTimeout},
		{"QueryTimeout", &c.QueryTimeout, DefaultQueryTimeout},
		{"NodeTimeout", &c.NodeTimeout, 3 * max(c.HeartbeatInterval, 0)},
	}
	for _, d := range durations {
		switch {
		case *d.v < 0:
			return c, fmt.Errorf("cluster: config: %s: must not be negative, got %v", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
			if d.name == "NodeTimeout" {
				*d.v = 3 * c.HeartbeatInterval
			}
		}
	}
	if c.UserTTL < minUserTTL {
		return c, fmt.Errorf("cluster: config: UserTTL: at least %v, got %v", minUserTTL, c.UserTTL)
	}
	if c.NodeTimeout <= c.HeartbeatInterval {
		return c, fmt.Errorf("cluster: config: NodeTimeout: must exceed HeartbeatInterval (%v), got %v", c.HeartbeatInterval, c.NodeTimeout)
	}
	switch {
	case c.MaxRequests < 0:
		return c, fmt.Errorf("cluster: config: MaxRequests: must not be negative, got %d", c.MaxRequests)
	case c.MaxRequests == 0:
		c.MaxRequests = DefaultMaxRequests
	}
	switch {
	case c.MaxInFlight < 0:
		return c, fmt.Errorf("cluster: config: MaxInFlight: must not be negative, got %d", c.MaxInFlight)
	case c.MaxInFlight == 0:
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Logger == nil {
		c.Logger = log
	}
	c.Logger = c.Logger.With("node", c.NodeID)
	return c, nil
}
