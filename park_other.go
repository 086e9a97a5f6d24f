//go:build !linux

package supersocket

import (
	"errors"
	"sync/atomic"
)

// parker is Linux-only (it needs epoll); elsewhere an idle session keeps a goroutine and
// moves its wait to a fresh, small stack instead (see idleHop).
type parker struct{}

func newParker() (*parker, error) { return nil, errors.New("parking needs epoll") }

func (*parker) park(func(func(fd uintptr)) error, *atomic.Uint32, *atomic.Uint32, func()) bool {
	return false
}
func (*parker) unpark(*atomic.Uint32) func() { return nil }
func (*parker) parkedCount() int             { return 0 }
func (*parker) stop()                        {}
