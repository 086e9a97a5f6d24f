package cluster

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with errors.Is: most are returned wrapped with detail.
var (
	// ErrNoSession: the session does not exist (it closed, or never did), or its node
	// is gone. Cross-node calls learn it from the owning node, or at once from NATS's
	// no-responders status when nothing serves the node's subject.
	ErrNoSession = errors.New("cluster: no such session")
	// ErrNodeGone: nothing serves the node's subject: the node stopped, crashed or is
	// cut off from NATS. An error that matches it also matches ErrNoSession when a
	// session was addressed.
	ErrNodeGone = errors.New("cluster: node is gone")
	// ErrNoUser: the user is bound to no live session anywhere in the cluster.
	ErrNoUser = errors.New("cluster: no such user")
	// ErrDisconnected: this node has lost NATS (or never joined): cross-node calls fail
	// at once with it, while local sessions keep working. Everything is restored after
	// the connection comes back.
	ErrDisconnected = errors.New("cluster: not connected to NATS")
	// ErrNATSUnavailable: Start could not reach NATS, or NATS has no JetStream.
	ErrNATSUnavailable = errors.New("cluster: NATS unavailable")
	// ErrTimeout: the other node did not answer within the context's deadline (or
	// Config.RequestTimeout when the context has none).
	ErrTimeout = errors.New("cluster: timed out")
	// ErrNoHandler: the node asked by Request has no handler for the subject.
	ErrNoHandler = errors.New("cluster: no handler for the request subject")
	// ErrBusy: the node asked by Request runs Config.MaxRequests handlers already.
	ErrBusy = errors.New("cluster: node busy")
	// ErrIncomplete: a cluster-wide query (Rooms, Members) lacks the answer of some
	// live node; the result holds what the others answered.
	ErrIncomplete = errors.New("cluster: some nodes did not answer")
	// ErrNotLocal: the session passed to Bind or JoinRoom is not a live session of
	// this node's server.
	ErrNotLocal = errors.New("cluster: not a live session of this node")
	// ErrBadName: a user, room, node or request subject name is empty, too long or (for
	// node IDs) holds a character that is not allowed.
	ErrBadName = errors.New("cluster: invalid name")
)

// goneError is the error of a call to a node that nothing serves: it matches
// ErrNodeGone, and ErrNoSession when a session was addressed.
type goneError struct {
	node    string
	session bool
}

func (e *goneError) Error() string {
	if e.session {
		return fmt.Sprintf("cluster: no such session: node %q is gone", e.node)
	}
	return fmt.Sprintf("cluster: node %q is gone", e.node)
}

func (e *goneError) Is(target error) bool {
	return target == ErrNodeGone || e.session && target == ErrNoSession
}

// RemoteError is an error a Request handler returned on another node, or its panic.
type RemoteError struct {
	Node    string // the node whose handler failed
	Subject string // the request subject
	Message string // the handler's error text
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("cluster: node %q, %s: %s", e.Node, e.Subject, e.Message)
}

// IncompleteError is the error of a cluster-wide query that some live nodes did not
// answer in time. It matches ErrIncomplete.
type IncompleteError struct {
	Missing []string // the nodes that did not answer
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("cluster: no answer from %v", e.Missing)
}

// Is makes the error match ErrIncomplete.
func (e *IncompleteError) Is(target error) bool { return target == ErrIncomplete }
