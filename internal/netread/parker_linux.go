//go:build linux

package netread

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// Parker keeps idle connections without a goroutine each. An idle connection's goroutine
// registers the socket with one epoll instance (Park) and exits; the Parker's single
// goroutine waits on that instance and runs the owner's Resume on a fresh goroutine when
// the socket becomes readable (bytes, the peer's FIN, an error), and Unpark takes a
// connection back at once (its owner is closing it). Ten thousand idle connections then
// cost heap only: no stack, no goroutine.
//
// The registration is level-triggered and one-shot, so bytes that arrived between the
// connection's last read and its registration are reported at once, and a fired
// registration stays disabled until the connection parks again (EPOLL_CTL_MOD re-arms it).
// Closing the socket removes it from the epoll set. Each park draws a fresh token, so an
// event for an earlier park finds nothing and is ignored. Tokens are never 0, which means
// "not parked".
//
// If waiting on the instance fails for a reason other than an interruption, the Parker
// resumes every parked connection, refuses later parks (their owners keep a goroutine
// instead), reports the error to the onFail function given to NewParker, and its
// goroutine ends: a persistent error never spins.
type Parker struct {
	epfd   int
	file   *os.File        // epfd, registered with the runtime's poller; closed by Stop
	raw    syscall.RawConn // file's
	wait   func(epfd int, events []syscall.EpollEvent, msec int) (int, error)
	onFail func(error)
	exited chan struct{}

	mu      sync.Mutex
	waiting map[uint32]parked // token → the parked connection; nil once stopped
	next    uint32
	err     error // why the watcher failed, if it did
}

// NewParker creates a Parker and starts its goroutine; Stop ends it. onFail, if not nil,
// is told (on the Parker's goroutine) if the Parker fails and stops parking.
func NewParker(onFail func(error)) (*Parker, error) {
	return newParker(syscall.EpollWait, onFail)
}

func newParker(wait func(int, []syscall.EpollEvent, int) (int, error), onFail func(error)) (*Parker, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// An epoll instance is itself pollable (readable when it has events): in non-blocking
	// mode, os.NewFile registers it with the runtime's poller, so the watcher waits like
	// any goroutine reading a socket, never in a blocking system call that would hold an
	// OS thread and need a P back on every wake-up.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	p := &Parker{epfd: epfd, wait: wait, onFail: onFail, exited: make(chan struct{}), waiting: make(map[uint32]parked)}
	p.file = os.NewFile(uintptr(epfd), "supersocket-parker")
	if p.raw, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, err
	}
	go p.watch()
	return p, nil
}

// Park registers r's connection for readability. True: the caller's goroutine must end
// without touching the connection again, and o.Resume runs on a new goroutine when the
// connection is readable or Unpark takes it back. False: nothing was registered (the
// Parker is stopped or failed, r has no raw descriptor, or o is closing) and the caller
// carries on.
func (p *Parker) Park(r *Reader, tok *Token, o Sleeper) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiting == nil {
		return false
	}
	t := p.next + 1
	for _, used := p.waiting[t]; used || t == 0; _, used = p.waiting[t] {
		t++
	}
	p.next = t
	tok.v.Store(t)
	if o.Closing() {
		tok.v.Store(0)
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(t)}
	var err error
	cerr := r.Control(func(fd uintptr) {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		if errors.Is(err, syscall.ENOENT) {
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if cerr != nil || err != nil {
		tok.v.Store(0)
		return false
	}
	p.waiting[t] = parked{tok: tok, owner: o}
	return true
}

// parked is a parked connection: its token, cleared when it leaves, and its owner.
type parked struct {
	tok   *Token
	owner Sleeper
}

// Unpark takes a parked connection back and returns its owner, whose Resume the caller
// must run on a new goroutine; nil if it is not parked (any more).
func (p *Parker) Unpark(tok *Token) Sleeper {
	if !tok.Parked() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.take(tok.v.Load())
}

// take removes token t's connection from the waiting set; p.mu is held.
func (p *Parker) take(t uint32) Sleeper {
	w, ok := p.waiting[t]
	if !ok {
		return nil
	}
	delete(p.waiting, t)
	w.tok.v.Store(0)
	return w.owner
}

// Parked returns how many connections are parked.
func (p *Parker) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

// Err returns why the Parker failed and stopped parking, or nil.
func (p *Parker) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// watch is the Parker's goroutine: it resumes each connection whose socket is ready,
// until Stop closes the instance or waiting on it fails.
func (p *Parker) watch() {
	defer close(p.exited)
	events := make([]syscall.EpollEvent, 128)
	var ready []Sleeper
	var failed error
	for failed == nil {
		err := p.raw.Read(func(uintptr) bool {
			for {
				n, err := p.wait(p.epfd, events, 0)
				switch {
				case errors.Is(err, syscall.EINTR):
					continue
				case errors.Is(err, syscall.EAGAIN) || err == nil && n == 0:
					return false // wait until the instance is readable
				case err != nil:
					failed = fmt.Errorf("epoll_wait: %w", err)
					return true
				}
				p.mu.Lock()
				for _, ev := range events[:n] {
					if o := p.take(uint32(ev.Fd)); o != nil {
						ready = append(ready, o)
					}
				}
				p.mu.Unlock()
				for i, o := range ready {
					go o.Resume()
					ready[i] = nil
				}
				ready = ready[:0]
			}
		})
		if err != nil {
			return // Stop closed the file; nothing is parked (see Stop)
		}
	}
	// The instance is broken: no parked connection may be stranded, and none may park
	// again.
	all := p.closeWaiting(failed)
	for _, o := range all {
		go o.Resume()
	}
	if p.onFail != nil {
		p.onFail(failed)
	}
}

// closeWaiting refuses later parks and returns every parked owner.
func (p *Parker) closeWaiting(err error) []Sleeper {
	p.mu.Lock()
	defer p.mu.Unlock()
	var all []Sleeper
	for t := range p.waiting {
		all = append(all, p.take(t))
	}
	p.waiting = nil
	if p.err == nil {
		p.err = err
	}
	return all
}

// Stop ends the Parker's goroutine and refuses later parks. Connections still parked are
// resumed, so none is stranded; an owner stops its Parker once its connections are done.
func (p *Parker) Stop() {
	for _, o := range p.closeWaiting(nil) {
		go o.Resume()
	}
	p.file.Close() // wakes the watcher's wait with an error
	<-p.exited
}
