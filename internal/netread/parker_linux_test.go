//go:build linux

package netread

import (
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// sleeper is a parked connection's owner for the tests.
type sleeper struct {
	closing atomic.Bool
	resumed chan struct{}
}

func newSleeper() *sleeper { return &sleeper{resumed: make(chan struct{}, 1)} }

func (s *sleeper) Closing() bool { return s.closing.Load() }
func (s *sleeper) Resume()       { s.resumed <- struct{}{} }

func (s *sleeper) waitResumed(t *testing.T, why string) {
	t.Helper()
	select {
	case <-s.resumed:
	case <-time.After(waitLong):
		t.Fatalf("not resumed after %v: %s", waitLong, why)
	}
}

func newTestParker(t *testing.T, wait func(int, []syscall.EpollEvent, int) (int, error), onFail func(error)) *Parker {
	t.Helper()
	if wait == nil {
		wait = syscall.EpollWait
	}
	p, err := newParker(wait, onFail)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A parked connection is resumed when bytes arrive, when the peer closes, and when Unpark
// takes it back; a closing owner does not park at all.
func TestParker_ResumesOnBytesFINAndUnpark(t *testing.T) {
	p := newTestParker(t, nil, nil)
	defer p.Stop()

	srv, cli := tcpPair(t)
	r := New(srv)
	var tok Token
	o := newSleeper()
	if !p.Park(r, &tok, o) || !tok.Parked() || p.Parked() != 1 {
		t.Fatalf("Park: parked %v, count %d", tok.Parked(), p.Parked())
	}
	cli.Write([]byte("x"))
	o.waitResumed(t, "bytes arrived")
	if p.Parked() != 0 || tok.Parked() {
		t.Fatalf("%d still parked after the resume", p.Parked())
	}

	// Parked again (the registration re-armed), the peer's FIN resumes it.
	if !p.Park(r, &tok, o) {
		t.Fatal("second Park refused")
	}
	// The byte already there is reported at once: level-triggered.
	o.waitResumed(t, "a byte left unread")
	buf := make([]byte, 1)
	srv.Read(buf)
	if !p.Park(r, &tok, o) {
		t.Fatal("third Park refused")
	}
	cli.CloseWrite()
	o.waitResumed(t, "the peer's FIN")

	// Unpark takes back a parked connection: its owner is returned, not resumed.
	srv2, _ := tcpPair(t)
	r2 := New(srv2)
	var tok2 Token
	o2 := newSleeper()
	if !p.Park(r2, &tok2, o2) {
		t.Fatal("Park refused")
	}
	if got := p.Unpark(&tok2); got != o2 || tok2.Parked() || p.Parked() != 0 {
		t.Fatalf("Unpark = %v, want the owner", got)
	}
	if p.Unpark(&tok2) != nil {
		t.Fatal("a second Unpark found the connection again")
	}

	// An owner that is closing is refused, and its token cleared.
	o2.closing.Store(true)
	if p.Park(r2, &tok2, o2) || tok2.Parked() {
		t.Fatal("a closing owner was parked")
	}
}

// If waiting on the epoll instance fails for good, the Parker resumes what is parked,
// refuses later parks, reports the error once, and its goroutine ends: it does not spin.
func TestParker_WaitErrorStopsWithoutSpinning(t *testing.T) {
	var calls atomic.Int32
	var fail atomic.Bool
	wait := func(epfd int, events []syscall.EpollEvent, msec int) (int, error) {
		calls.Add(1)
		if fail.Load() {
			return 0, syscall.EBADF
		}
		return syscall.EpollWait(epfd, events, msec)
	}
	failed := make(chan error, 2)
	p := newTestParker(t, wait, func(err error) { failed <- err })
	defer p.Stop()

	srv, cli := tcpPair(t)
	r := New(srv)
	var tok Token
	o := newSleeper()
	if !p.Park(r, &tok, o) {
		t.Fatal("Park refused")
	}
	fail.Store(true)
	cli.Write([]byte("x")) // readiness makes the watcher call wait, which fails
	o.waitResumed(t, "the parker failed")
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.EBADF) {
			t.Fatalf("onFail got %v, want EBADF", err)
		}
	case <-time.After(waitLong):
		t.Fatal("onFail was not told")
	}
	select {
	case <-p.exited:
	case <-time.After(waitLong):
		t.Fatal("the watcher goroutine did not end")
	}
	if n := calls.Load(); n > 3 {
		t.Errorf("wait called %d times: the failure spun", n)
	}
	if !errors.Is(p.Err(), syscall.EBADF) {
		t.Errorf("Err() = %v", p.Err())
	}
	if p.Park(r, &tok, o) {
		t.Fatal("a failed parker accepted a park")
	}
}

// Stop resumes whatever is still parked, so no owner is stranded.
func TestParker_StopResumesParked(t *testing.T) {
	p := newTestParker(t, nil, nil)
	srv, _ := tcpPair(t)
	var tok Token
	o := newSleeper()
	if !p.Park(New(srv), &tok, o) {
		t.Fatal("Park refused")
	}
	p.Stop()
	o.waitResumed(t, "Stop")
	if p.Park(New(srv), &tok, o) {
		t.Fatal("a stopped parker accepted a park")
	}
}
