package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
)

// Node-to-node requests, without a session: Request sends a payload to a handler
// registered under a subject on one node, and returns its answer. The frame carries
// the caller's node, the subject and the time left before the caller's deadline, so a
// handler's context ends when the caller stops waiting. Each request runs on its own
// goroutine, at most Config.MaxRequests at once.

// RequestHandler answers a node-to-node request: from is the asking node. ctx ends when
// the caller stops waiting, or when this node leaves the cluster. Its error reaches the
// caller as a *RemoteError. It runs on a goroutine of its own.
type RequestHandler func(ctx context.Context, from string, payload []byte) ([]byte, error)

// Reply statuses.
const (
	replyOK = iota
	replyNoHandler
	replyError
	replyBusy
)

// Handle registers h for requests to subject on this node, replacing any handler it
// had; a nil h removes it. Safe from any goroutine.
func (n *Node[T]) Handle(subject string, h RequestHandler) {
	n.handlersMu.Lock()
	defer n.handlersMu.Unlock()
	if h == nil {
		delete(n.handlers, subject)
		return
	}
	n.handlers[subject] = h
}

func (n *Node[T]) handler(subject string) RequestHandler {
	n.handlersMu.RLock()
	defer n.handlersMu.RUnlock()
	return n.handlers[subject]
}

// Request sends payload to the handler of subject on node nodeID (this node's own
// handler, called directly, when nodeID is this node's) and returns its answer. It
// fails with ErrNodeGone at once when the node is gone, ErrNoHandler when it has no
// handler for subject, ErrBusy when it runs MaxRequests handlers already, a
// *RemoteError when the handler failed, ErrDisconnected at once without NATS, and
// ErrTimeout when ctx's deadline (or Config.RequestTimeout) passes. Safe from any
// goroutine.
func (n *Node[T]) Request(ctx context.Context, nodeID, subject string, payload []byte) ([]byte, error) {
	if err := checkName("request subject", subject); err != nil {
		return nil, err
	}
	ctx, cancel := n.callContext(ctx)
	defer cancel()
	n.stats.requestsOut.Add(1)
	if nodeID == n.cfg.NodeID {
		h := n.handler(subject)
		if h == nil {
			return nil, fmt.Errorf("%w: %s on node %q", ErrNoHandler, subject, nodeID)
		}
		return n.runHandler(ctx, h, subject, n.cfg.NodeID, payload)
	}
	if err := checkNodeID(nodeID); err != nil {
		return nil, err
	}
	l := n.link.Load()
	if l == nil || !l.connected() {
		return nil, ErrDisconnected
	}
	b := appendString(nil, n.cfg.NodeID)
	b = appendString(b, subject)
	deadline, _ := ctx.Deadline()
	b = appendUvarint(b, uint64(max(time.Until(deadline), 0)/time.Microsecond))
	b = append(b, payload...)
	n.stats.msgsOut.Add(1)
	m, err := l.nc.RequestWithContext(ctx, n.cfg.Prefix+".node."+nodeID+".rpc", b)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &goneError{node: nodeID}
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: node %q, %s: %w", ErrTimeout, nodeID, subject, ctx.Err())
	case err != nil:
		n.stats.errors.Add(1)
		if !l.connected() {
			return nil, fmt.Errorf("%w: %v", ErrDisconnected, err)
		}
		return nil, fmt.Errorf("cluster: request to node %q: %w", nodeID, err)
	}
	n.stats.msgsIn.Add(1)
	if len(m.Data) == 0 {
		n.stats.errors.Add(1)
		return nil, errBadFrame
	}
	switch m.Data[0] {
	case replyOK:
		return m.Data[1:], nil
	case replyNoHandler:
		return nil, fmt.Errorf("%w: %s on node %q", ErrNoHandler, subject, nodeID)
	case replyBusy:
		return nil, fmt.Errorf("%w: node %q", ErrBusy, nodeID)
	}
	return nil, &RemoteError{Node: nodeID, Subject: subject, Message: string(m.Data[1:])}
}

// runHandler calls h, turning a panic into a *RemoteError.
func (n *Node[T]) runHandler(ctx context.Context, h RequestHandler, subject, from string, payload []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("request handler panicked", "subject", subject, "from", from, "panic", p, "stack", string(debug.Stack()))
			out, err = nil, &RemoteError{Node: n.cfg.NodeID, Subject: subject, Message: fmt.Sprintf("panic: %v", p)}
		}
	}()
	out, err = h(ctx, from, payload)
	if err != nil && from == n.cfg.NodeID {
		var re *RemoteError
		if !errors.As(err, &re) {
			err = &RemoteError{Node: n.cfg.NodeID, Subject: subject, Message: err.Error()}
		}
	}
	return out, err
}

// onRequest answers a request from another node, on a goroutine of its own.
func (n *Node[T]) onRequest(l *link, m *nats.Msg) {
	n.stats.msgsIn.Add(1)
	n.stats.requestsIn.Add(1)
	r := reader{b: m.Data}
	from := r.string()
	subject := r.string()
	left := time.Duration(r.uvarint()) * time.Microsecond
	payload := r.rest()
	if r.bad || m.Reply == "" {
		n.stats.errors.Add(1)
		return
	}
	h := n.handler(subject)
	if h == nil {
		l.nc.Publish(m.Reply, []byte{replyNoHandler})
		return
	}
	select {
	case l.reqs <- struct{}{}:
	default:
		l.nc.Publish(m.Reply, []byte{replyBusy})
		return
	}
	l.work.Go(func() {
		defer func() { <-l.reqs }()
		ctx, cancel := context.WithTimeout(l.ctx, left)
		defer cancel()
		out, err := n.runHandler(ctx, h, subject, from, payload)
		var b []byte
		if err != nil {
			b = append([]byte{replyError}, err.Error()...)
		} else {
			b = append([]byte{replyOK}, out...)
		}
		if err := l.nc.Publish(m.Reply, b); err != nil {
			n.stats.errors.Add(1)
		}
		n.stats.msgsOut.Add(1)
	})
}
