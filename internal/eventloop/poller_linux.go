//go:build linux

// Package eventloop is the system-call side of supersocket's epoll engine: an epoll
// instance that a loop goroutine waits on, and the raw,
// non-blocking socket calls (accept4, read, shutdown, close) on the file descriptors the
// engine owns. The engine itself — which loop owns which socket, how a request reaches a
// handler — is the root package's (loop*.go; docs/engines.md).
package eventloop

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Event bits, as epoll reports them.
const (
	In    = syscall.EPOLLIN
	Out   = syscall.EPOLLOUT
	RdHup = syscall.EPOLLRDHUP
	Hup   = syscall.EPOLLHUP
	Err   = syscall.EPOLLERR
	// ET makes a registration edge-triggered: an event per change of readiness, not one
	// per wait while the socket stays ready.
	ET = 1 << 31
)

// Poller is one epoll instance. Its loop goroutine waits on it with Wait: a look that
// does not wait, and when nothing is ready a blocking epoll_wait system call, as gnet
// does (the runtime then lets other goroutines have the thread's P). That costs less per
// wake-up than parking the goroutine on Go's poller, which would make two more epoll
// waits (the runtime's, and an empty look before parking) and a park and a ready per
// round trip: a fifth of the server's CPU per message at one connection. Wait and Poll
// are used by one goroutine at a time; Add, Mod and Close are safe from any goroutine.
type Poller struct {
	fd      int
	wakeFd  int // an eventfd among the instance's events: Close writes it
	closing atomic.Bool
	// Events holds what the last Wait or Poll returned: Events[:N].
	Events []syscall.EpollEvent
	N      int
}

// NewPoller makes an epoll instance with room for size events per Wait.
func NewPoller(size int) (*Poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	p := &Poller{fd: fd, Events: make([]syscall.EpollEvent, size)}
	efd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", errno)
	}
	p.wakeFd = int(efd)
	// Its events carry data that names no socket (a descriptor without a registration
	// number): the loop skips them, and Wait sees that Close was called.
	if err := p.Add(p.wakeFd, In|ET, uint64(uint32(p.wakeFd))); err != nil {
		p.Release()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return p, nil
}

// ErrClosed is Wait's and Poll's error once Close was called.
var ErrClosed = errors.New("eventloop: poller closed")

// Wait waits until the instance has events and stores them in Events[:N]. It returns
// ErrClosed once Close was called, or the error of a failed epoll_wait.
func (p *Poller) Wait() error {
	if err := p.Poll(); err != nil || p.N > 0 {
		return err
	}
	// Nothing ready: let the goroutines that are runnable run first, then block.
	runtime.Gosched()
	for {
		r, _, errno := syscall.Syscall6(syscall.SYS_EPOLL_PWAIT, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.Events[0])), uintptr(len(p.Events)), ^uintptr(0), 0, 0)
		switch errno {
		case 0:
			p.N = int(r)
			if p.closing.Load() {
				return ErrClosed
			}
			return nil
		case syscall.EINTR:
			continue
		}
		return fmt.Errorf("epoll_wait: %w", errno)
	}
}

// Poll is Wait that does not wait: Events[:N] holds what is ready now (maybe nothing).
func (p *Poller) Poll() error {
	p.N = 0
	if p.closing.Load() {
		return ErrClosed
	}
	for {
		// A raw system call: with a zero timeout it never blocks.
		r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.Events[0])), uintptr(len(p.Events)), 0, 0, 0)
		switch errno {
		case 0:
			p.N = int(r)
			return nil
		case syscall.EINTR:
			continue
		}
		return fmt.Errorf("epoll_wait: %w", errno)
	}
}

// Add registers fd for events; every event it reports carries data (see Data).
func (p *Poller) Add(fd int, events uint32, data uint64) error {
	return p.ctl(syscall.EPOLL_CTL_ADD, fd, events, data)
}

// Mod changes fd's registration. Like Add, it reports the events that are ready at once
// (an edge-triggered registration fires for the current readiness).
func (p *Poller) Mod(fd int, events uint32, data uint64) error {
	return p.ctl(syscall.EPOLL_CTL_MOD, fd, events, data)
}

func (p *Poller) ctl(op, fd int, events uint32, data uint64) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(uint32(data)), Pad: int32(uint32(data >> 32))}
	// epoll_ctl never blocks: a raw system call, like the reads and writes.
	_, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(p.fd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Del removes fd from the instance.
func (p *Poller) Del(fd int) error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(p.fd), syscall.EPOLL_CTL_DEL, uintptr(fd), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Data returns the data an event carries (what Add or Mod registered).
func Data(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Close makes a wait in progress, and every later one, return ErrClosed; the waiter then
// calls Release. Safe from any goroutine.
func (p *Poller) Close() {
	if p.closing.Swap(true) {
		return
	}
	one := uint64(1)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p.wakeFd), uintptr(unsafe.Pointer(&one)), 8)
}

// Release closes the instance's descriptors, once its waiter has seen ErrClosed (or
// nobody waits on it): a descriptor is closed only when no system call can be using it.
func (p *Poller) Release() {
	syscall.Close(p.fd)
	syscall.Close(p.wakeFd)
}
