//go:build linux

package supersocket

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// parker keeps a server's idle sessions without a goroutine each. An idle session's
// goroutine registers its socket with one epoll instance shared by the server and exits;
// the parker's single goroutine waits on that instance and starts a fresh goroutine for the
// session when its socket becomes readable (bytes, the peer's FIN, an error), and Close
// does the same for a session closed while parked. Ten thousand idle sessions then cost
// heap only: no stack, no goroutine.
//
// The registration is level-triggered and one-shot, so bytes that arrived between the
// session's last read and its registration are reported at once, and a fired registration
// stays disabled until the session parks again (EPOLL_CTL_MOD re-arms it). Closing the
// socket removes it from the epoll set. Each park draws a fresh token, so an event for an
// earlier park finds nothing and is ignored. Tokens are never 0, which means "not parked".
type parker struct {
	epfd   int
	file   *os.File        // epfd, registered with the runtime's poller; closed by stop
	raw    syscall.RawConn // file's
	exited chan struct{}

	mu      sync.Mutex
	waiting map[uint32]parked // token → the parked session
	next    uint32
}

// parked is what the parker knows of a parked session.
type parked struct {
	tok    *atomic.Uint32 // the session's token; 0 once it is resumed
	resume func()         // continues the session on a new goroutine's stack
}

func newParker() (*parker, error) {
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
	p := &parker{epfd: epfd, exited: make(chan struct{}), waiting: make(map[uint32]parked)}
	p.file = os.NewFile(uintptr(epfd), "supersocket-parker")
	if p.raw, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, err
	}
	go p.watch()
	return p, nil
}

// park registers the socket behind control for readability; on true the caller's
// goroutine must end and resume runs on a new goroutine when the socket is ready or when
// unpark is called. It returns false, registering nothing, if closed is already set: the
// token is stored before closed is read, and Close sets closed before it reads the token,
// so one of them always sees the other.
func (p *parker) park(control func(func(fd uintptr)) error, tok *atomic.Uint32, closed *atomic.Uint32, resume func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiting == nil {
		return false // stopped
	}
	t := p.next + 1
	for _, used := p.waiting[t]; used || t == 0; _, used = p.waiting[t] {
		t++
	}
	p.next = t
	tok.Store(t)
	if closed.Load() != 0 {
		tok.Store(0)
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(t)}
	var err error
	cerr := control(func(fd uintptr) {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		if errors.Is(err, syscall.ENOENT) {
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if cerr != nil || err != nil {
		tok.Store(0)
		return false
	}
	p.waiting[t] = parked{tok: tok, resume: resume}
	return true
}

// unpark takes a parked session back and returns its resume function, or nil if it is
// not parked (any more). Cheap when the session is not parked.
func (p *parker) unpark(tok *atomic.Uint32) func() {
	if tok.Load() == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.take(tok.Load())
}

// take removes token t's session from the waiting set; p.mu is held.
func (p *parker) take(t uint32) func() {
	w, ok := p.waiting[t]
	if !ok {
		return nil
	}
	delete(p.waiting, t)
	w.tok.Store(0)
	return w.resume
}

// parkedCount returns how many sessions are parked.
func (p *parker) parkedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

// watch is the parker's goroutine: it resumes each session whose socket is ready, until
// stop closes the instance.
func (p *parker) watch() {
	defer close(p.exited)
	defer p.resumeAll() // none at a stop; after a broken instance, no session is stranded
	events := make([]syscall.EpollEvent, 128)
	var resume []func()
	for {
		err := p.raw.Read(func(uintptr) bool {
			for {
				n, err := syscall.EpollWait(p.epfd, events, 0)
				switch {
				case errors.Is(err, syscall.EINTR):
					continue
				case err != nil || n == 0:
					return err != nil // n == 0: wait until the instance is readable
				}
				p.mu.Lock()
				for _, ev := range events[:n] {
					if r := p.take(uint32(ev.Fd)); r != nil {
						resume = append(resume, r)
					}
				}
				p.mu.Unlock()
				for i, r := range resume {
					go r()
					resume[i] = nil
				}
				resume = resume[:0]
			}
		})
		if err != nil {
			return // stop closed the file
		}
	}
}

// resumeAll resumes every parked session and refuses later parks.
func (p *parker) resumeAll() {
	p.mu.Lock()
	var all []func()
	for t := range p.waiting {
		all = append(all, p.take(t))
	}
	p.waiting = nil
	p.mu.Unlock()
	for _, resume := range all {
		go resume()
	}
}

// stop ends the watcher. No session may be parked: the server calls it once every
// session has finished.
func (p *parker) stop() {
	p.mu.Lock()
	p.waiting = nil
	p.mu.Unlock()
	p.file.Close() // wakes the watcher's wait with an error
	<-p.exited
}
