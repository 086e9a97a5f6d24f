//go:build linux

// Package eventloop is the system-call side of supersocket's epoll engine: an epoll
// instance that a loop goroutine waits on through Go's own poller, and the raw,
// non-blocking socket calls (accept4, read, shutdown, close) on the file descriptors the
// engine owns. The engine itself — which loop owns which socket, how a request reaches a
// handler — is the root package's (loop*.go; docs/engines.md).
package eventloop

import (
	"errors"
	"fmt"
	"os"
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

// Poller is one epoll instance. Its loop goroutine waits on it with Wait, which parks
// like any goroutine reading a socket: the epoll descriptor is itself pollable (readable
// while it has events), so Go's poller wakes the goroutine, and no OS thread blocks in
// epoll_wait. Wait is used by one goroutine at a time; Add, Mod and Close are safe from
// any goroutine.
type Poller struct {
	fd     int
	file   *os.File        // fd, registered with the runtime's poller; Close closes it
	raw    syscall.RawConn // file's
	waitFn func(uintptr) bool
	pollFn func(uintptr)
	// Events holds what the last Wait returned: Events[:N].
	Events []syscall.EpollEvent
	N      int
	err    error
}

// NewPoller makes an epoll instance with room for size events per Wait.
func NewPoller(size int) (*Poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// In non-blocking mode os.NewFile registers the descriptor with the runtime's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	p := &Poller{fd: fd, Events: make([]syscall.EpollEvent, size)}
	p.file = os.NewFile(uintptr(fd), "supersocket-loop")
	if p.raw, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, err
	}
	p.waitFn = p.poll
	p.pollFn = func(fd uintptr) { p.poll(fd) }
	return p, nil
}

// ErrClosed is Wait's error once Close was called.
var ErrClosed = errors.New("eventloop: poller closed")

// Wait waits until the instance has events and stores them in Events[:N]. It returns
// ErrClosed once the Poller is closed, or the error of a failed epoll_wait.
func (p *Poller) Wait() error {
	p.N, p.err = 0, nil
	if err := p.raw.Read(p.waitFn); err != nil {
		return ErrClosed
	}
	return p.err
}

// Poll is Wait that does not wait: Events[:N] holds what is ready now (maybe nothing).
func (p *Poller) Poll() error {
	p.N, p.err = 0, nil
	if err := p.raw.Control(p.pollFn); err != nil {
		return ErrClosed
	}
	return p.err
}

// poll is Wait's RawConn.Read callback: a wait of zero milliseconds, false (wait for the
// descriptor to be readable) when nothing is ready.
func (p *Poller) poll(uintptr) bool {
	for {
		r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.Events[0])), uintptr(len(p.Events)), 0, 0, 0)
		switch errno {
		case 0:
			p.N = int(r)
			return r > 0
		case syscall.EINTR:
			continue
		}
		p.err = fmt.Errorf("epoll_wait: %w", errno)
		return true
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

// Data returns the data an event carries (what Add or Mod registered).
func Data(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Close closes the instance: a Wait in progress, and every later one, returns ErrClosed.
func (p *Poller) Close() error { return p.file.Close() }
