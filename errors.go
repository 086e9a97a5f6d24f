package supersocket

import "errors"

// Sentinel errors. Compare with errors.Is: some are returned wrapped with detail.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Stop.
	ErrServerClosed = errors.New("supersocket: server closed")
	// ErrNotRunning is returned by Connect on a server that is not running.
	ErrNotRunning = errors.New("supersocket: server not running")
	// ErrServerRunning is returned by Start on a server that is not stopped.
	ErrServerRunning = errors.New("supersocket: server already started")
	// ErrSessionClosed is returned by a send on a session that is closed or closing.
	ErrSessionClosed = errors.New("supersocket: session closed")
	// ErrSendQueueFull is returned by TrySend when the session's send queue holds
	// SendQueueSize messages or SendQueueBytes bytes.
	ErrSendQueueFull = errors.New("supersocket: send queue full")
	// ErrSendTimeout is returned by Send when the queue stayed full for SendTimeout.
	ErrSendTimeout = errors.New("supersocket: send timed out")
)

// Reasons a connection is refused before a session exists, as given to Config.OnRefused.
var (
	// ErrMaxConnections: the server already holds MaxConnections sessions.
	ErrMaxConnections = errors.New("supersocket: connection refused: MaxConnections reached")
	// ErrTooManyFromIP: the remote IP already holds MaxConnectionsPerIP sessions.
	ErrTooManyFromIP = errors.New("supersocket: connection refused: MaxConnectionsPerIP reached")
	// ErrConnectionNotAllowed: Config.AllowConnect refused the remote address.
	ErrConnectionNotAllowed = errors.New("supersocket: connection refused by AllowConnect")
)
