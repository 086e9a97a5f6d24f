//go:build !linux

package supersocket

import (
	"net"
	"time"
)

// The epoll engine needs Linux; elsewhere Config.Engine "epoll" serves with the
// goroutine engine, which Start logs.

type engine[T any] struct{}

// loopListener is never made off Linux.
type loopListener struct{ net.Listener }

// loopConn is never made off Linux; Session.send names the type.
type loopConn[T any] struct{ transport[T] }

func (c *loopConn[T]) send([][]byte, time.Duration) error { return ErrSessionClosed }

func (c *loopConn[T]) drainCheck() {}

func (srv *Server[T]) newEngine([]net.Listener, []*tlsListener, []*WebSocketConfig, []*listenerStats) *engine[T] {
	if srv.cfg.Engine == EngineEpoll {
		srv.log.Info("the epoll engine needs Linux; serving with the goroutine engine")
	}
	return nil
}

func (e *engine[T]) accepts(net.Listener) bool { return false }
func (e *engine[T]) start(*run)                {}
func (e *engine[T]) listen(*loopListener)      {}

func (srv *Server[T]) loopIdle() int { return 0 }
