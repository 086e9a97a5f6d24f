//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Real processes: the command is built with go build and run as a user runs it; its
// hand-over starts further processes of the same binary, which are not the test's
// children, so they are known by the pids the logs name and watched through /proc.

// buildCommand builds the supersocket command into a temporary folder.
func buildCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "supersocket")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// logEvent is one line of the processes' text logs.
type logEvent struct {
	at    time.Time // when the test read it
	msg   string
	attrs map[string]string
}

// procLogs reads the text logs every process of a run writes to one pipe, and lets the
// test wait for lines. done closes at the pipe's end: every process has exited.
type procLogs struct {
	mu      sync.Mutex
	lines   []string
	events  []logEvent
	changed chan struct{} // closed and replaced at each new event
	done    chan struct{}
}

var logAttrRE = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// readLogs starts reading r until its end.
func readLogs(r io.Reader) *procLogs {
	l := &procLogs{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ev := logEvent{at: time.Now(), attrs: map[string]string{}}
			for _, m := range logAttrRE.FindAllStringSubmatch(sc.Text(), -1) {
				v := m[2]
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				}
				ev.attrs[m[1]] = v
			}
			ev.msg = ev.attrs["msg"]
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			l.events = append(l.events, ev)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *procLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// wait returns the first event (from the from'th on) that match accepts, and its index,
// waiting for it until the deadline.
func (l *procLogs) wait(t *testing.T, what string, from int, deadline time.Time, match func(logEvent) bool) (logEvent, int) {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for i := from; ; {
		l.mu.Lock()
		for ; i < len(l.events); i++ {
			if match(l.events[i]) {
				ev := l.events[i]
				l.mu.Unlock()
				return ev, i
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-l.done:
			l.mu.Lock()
			n := len(l.events)
			l.mu.Unlock()
			if i == n {
				t.Fatalf("the logs ended without %s:\n%s", what, l)
			}
		case <-timer.C:
			t.Fatalf("no %s within the deadline:\n%s", what, l)
		}
	}
}

// exited reports whether process pid has exited (gone, or a zombie nobody reaped).
func exited(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// waitExited waits until pid has exited; a process that is not the test's child gives no
// event to wait on, so its state is looked at every 2 ms.
func waitExited(pid int, deadline time.Time) (time.Time, error) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !exited(pid) {
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("process %d still runs", pid)
		}
		<-tick.C
	}
	return time.Now(), nil
}

// startServe starts the built command with args, its logs on a pipe, and returns the
// process, the logs, and the address it listens on. Every process of the run (the
// hand-over's too) is killed when the test ends.
func startServeProcess(t *testing.T, bin string, extra []*os.File, env []string, args ...string) (*exec.Cmd, *procLogs, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = w
	cmd.ExtraFiles = extra
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	logs := readLogs(r)
	t.Cleanup(func() {
		// Whatever still runs: every pid the logs named, and the first process.
		logs.mu.Lock()
		pids := []int{cmd.Process.Pid}
		for _, ev := range logs.events {
			if p, err := strconv.Atoi(ev.attrs["new_pid"]); err == nil {
				pids = append(pids, p)
			}
		}
		logs.mu.Unlock()
		for _, p := range pids {
			if !exited(p) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
		r.Close()
	})
	go cmd.Wait() // reaped as it exits; the test watches it through /proc like the others
	ev, _ := logs.wait(t, "listening", 0, time.Now().Add(30*time.Second), func(ev logEvent) bool { return ev.msg == "listening" })
	return cmd, logs, ev.attrs["addr"]
}

// restartLoad is the traffic of the restart test: one-shot clients (connect, one request,
// its reply) and long-lived sessions, counting what went wrong.
type restartLoad struct {
	addr string
	stop chan struct{}
	wg   sync.WaitGroup

	served, refused, unanswered atomic.Int64
	longSent, longReplies       atomic.Int64
	longClosed, longLost        atomic.Int64
	errMu                       sync.Mutex
	errs                        []string

	mu      sync.Mutex
	want    int64         // served count that closes reached
	reached chan struct{} // nil when no one waits
}

// servedOne counts a one-shot request served, and wakes waitServed.
func (l *restartLoad) servedOne() {
	v := l.served.Add(1)
	l.mu.Lock()
	if l.reached != nil && v >= l.want {
		close(l.reached)
		l.reached = nil
	}
	l.mu.Unlock()
}

// waitServed waits until n one-shot requests in all have been served.
func (l *restartLoad) waitServed(t *testing.T, n int64, deadline time.Time) {
	t.Helper()
	l.mu.Lock()
	if l.served.Load() >= n {
		l.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	l.want, l.reached = n, ch
	l.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(time.Until(deadline)):
		t.Fatalf("%d of %d requests served by the deadline", l.served.Load(), n)
	}
}

func (l *restartLoad) fail(counter *atomic.Int64, format string, args ...any) {
	counter.Add(1)
	l.errMu.Lock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
	l.errMu.Unlock()
}

func (l *restartLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// oneShot loops: connect, send one request, read its reply, close (with a reset, so that
// thousands of connections leave no TIME_WAIT behind on the client's ports).
func (l *restartLoad) oneShot(id int) {
	defer l.wg.Done()
	for i := 0; !l.stopped(); i++ {
		c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
		if err != nil {
			l.fail(&l.refused, "one-shot %d: %v", id, err)
			continue
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		want := fmt.Sprintf("o%d-%d", id, i)
		_, err = io.WriteString(c, "ECHO "+want+"\r\n")
		var line string
		if err == nil {
			line, err = bufio.NewReader(c).ReadString('\n')
		}
		switch {
		case err != nil:
			l.fail(&l.unanswered, "one-shot %d, request %d: %v", id, i, err)
		case line != want+"\r\n":
			l.fail(&l.unanswered, "one-shot %d, request %d: reply %q", id, i, line)
		default:
			l.servedOne()
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

// longLived keeps a session: bursts of requests, each sent once the last one's reply has
// come, with a pause between bursts longer than the drain's quiet time (100 ms), as a
// client with think time has. Before a burst it looks whether the server has closed the
// session (the drain closes a session in a pause); then it connects again. A request
// sent without its reply coming is lost.
func (l *restartLoad) longLived(id int) {
	defer l.wg.Done()
	pause := time.NewTicker(150 * time.Millisecond)
	defer pause.Stop()
	for seq := 0; !l.stopped(); {
		c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
		if err != nil {
			l.fail(&l.refused, "long-lived %d: %v", id, err)
			<-pause.C
			continue
		}
		r := bufio.NewReader(c)
		for !l.stopped() {
			// Closed in the pause? A peek that cannot wait tells (a read past its
			// deadline would not look at the socket at all).
			if closed, err := peekClosed(c.(*net.TCPConn)); closed || err != nil {
				if err != nil {
					l.fail(&l.longLost, "long-lived %d: between bursts: %v", id, err)
				}
				l.longClosed.Add(1)
				break
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			ok := true
			for range 10 {
				seq++
				want := fmt.Sprintf("l%d-%d", id, seq)
				if _, err := io.WriteString(c, "ECHO "+want+"\r\n"); err != nil {
					l.fail(&l.longLost, "long-lived %d, request %d: write: %v", id, seq, err)
					ok = false
					break
				}
				l.longSent.Add(1)
				line, err := r.ReadString('\n')
				if err != nil || line != want+"\r\n" {
					l.fail(&l.longLost, "long-lived %d, request %d: %q, %v", id, seq, line, err)
					ok = false
					break
				}
				l.longReplies.Add(1)
			}
			if !ok {
				break
			}
			<-pause.C
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

// peekClosed reports whether the server has ended the connection: its end (or a reset)
// waits in the socket. Bytes waiting are an error here: nothing was asked.
func peekClosed(c *net.TCPConn) (bool, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	var n int
	var perr error
	if err := rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}); err != nil {
		return false, err
	}
	switch {
	case errors.Is(perr, syscall.EAGAIN):
		return false, nil
	case errors.Is(perr, syscall.ECONNRESET):
		return true, nil
	case perr != nil:
		return false, perr
	case n == 0:
		return true, nil
	}
	return false, fmt.Errorf("%d unasked byte(s) from the server", n)
}

// TestRestartHandsOverWithoutDropping: three back-to-back SIGUSR2 restarts of a real
// serve process under load — one-shot clients in eight goroutines and four long-lived
// sessions — refuse no connection and leave no request without its reply. Each restart
// is timed: the signal, the new process serving (the old one's "handed over"), the old
// one gone.
func TestRestartHandsOverWithoutDropping(t *testing.T) {
	bin := buildCommand(t)
	deadline := time.Now().Add(3 * time.Minute)
	cmd, logs, addr := startServeProcess(t, bin, nil, nil,
		"serve", "-addr", "127.0.0.1:0", "-drain-timeout", "10s", "-metrics-addr", "127.0.0.1:0")
	load := &restartLoad{addr: addr, stop: make(chan struct{})}
	for i := range 8 {
		load.wg.Add(1)
		go load.oneShot(i)
	}
	for i := range 4 {
		load.wg.Add(1)
		go load.longLived(i)
	}
	stopLoad := sync.OnceFunc(func() {
		close(load.stop)
		load.wg.Wait()
	})
	defer stopLoad()
	load.waitServed(t, 200, deadline) // traffic before the first restart

	// Back to back: each process is signalled as soon as it serves, while the one before
	// it may still drain; the old ones are watched on the side.
	pid := cmd.Process.Pid
	from := 0
	type restart struct {
		oldPid, newPid int
		served         int64 // one-shot requests served from the signal to the next
		ready, self    time.Duration
		gone           chan time.Duration
	}
	var restarts []*restart
	var watch sync.WaitGroup
	watchErrs := make(chan error, 3)
	for k := range 3 {
		r := &restart{oldPid: pid, served: load.served.Load(), gone: make(chan time.Duration, 1)}
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		ev, i := logs.wait(t, fmt.Sprintf("restart %d's hand-over", k+1), from, deadline, func(ev logEvent) bool {
			return ev.msg == "handed over" || ev.msg == "hand-over failed; still serving"
		})
		if ev.msg != "handed over" {
			t.Fatalf("restart %d: %s: %s", k+1, ev.msg, ev.attrs["err"])
		}
		from = i + 1
		r.ready = ev.at.Sub(t0)
		r.self, _ = time.ParseDuration(ev.attrs["took"])
		var err error
		if r.newPid, err = strconv.Atoi(ev.attrs["new_pid"]); err != nil {
			t.Fatalf("restart %d: new_pid %q", k+1, ev.attrs["new_pid"])
		}
		watch.Go(func() {
			at, err := waitExited(r.oldPid, deadline)
			if err != nil {
				watchErrs <- err
				close(r.gone)
				return
			}
			r.gone <- at.Sub(t0)
		})
		restarts = append(restarts, r)
		pid = r.newPid
		// The next signal once the new process has served a few: it serves.
		load.waitServed(t, load.served.Load()+20, deadline)
	}
	watch.Wait()
	close(watchErrs)
	for err := range watchErrs {
		t.Fatal(err)
	}
	for k, r := range restarts {
		next := load.served.Load()
		if k+1 < len(restarts) {
			next = restarts[k+1].served
		}
		gone := <-r.gone
		logs.wait(t, fmt.Sprintf("process %d's exiting", r.oldPid), 0, deadline, func(ev logEvent) bool {
			return ev.msg == "exiting" && ev.attrs["pid"] == strconv.Itoa(r.oldPid)
		})
		t.Logf("restart %d: SIGUSR2 → new process %d serving after %v (its own measure %v) → old process %d gone after %v; %d one-shot requests served until the next signal",
			k+1, r.newPid, r.ready.Round(time.Millisecond), r.self, r.oldPid, gone.Round(time.Millisecond), next-r.served)
	}
	load.waitServed(t, load.served.Load()+200, deadline) // traffic served by the fourth process
	stopLoad()

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := waitExited(pid, deadline); err != nil {
		t.Fatal(err)
	}
	select {
	case <-logs.done:
	case <-time.After(time.Until(deadline)):
		t.Fatalf("the logs' pipe is still open after the last process exited")
	}
	t.Logf("one-shot: %d requests served, %d connections refused, %d requests without a reply", load.served.Load(), load.refused.Load(), load.unanswered.Load())
	t.Logf("long-lived: %d requests, %d replies, %d sessions closed by a drain, %d requests lost", load.longSent.Load(), load.longReplies.Load(), load.longClosed.Load(), load.longLost.Load())
	for _, e := range load.errs {
		t.Error(e)
	}
	if load.refused.Load() != 0 || load.unanswered.Load() != 0 || load.longLost.Load() != 0 {
		t.Fatalf("refused %d, unanswered %d, long-lived lost %d", load.refused.Load(), load.unanswered.Load(), load.longLost.Load())
	}
	if load.longReplies.Load() != load.longSent.Load() {
		t.Fatalf("long-lived sessions: %d replies to %d requests", load.longReplies.Load(), load.longSent.Load())
	}
	if load.longClosed.Load() < 3 {
		t.Errorf("%d long-lived sessions were closed by the drains, want one each restart at least", load.longClosed.Load())
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs)
	}
}

// echoOnce connects to addr, sends one ECHO and checks its reply.
func echoOnce(t *testing.T, addr, text string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ECHO "+text+"\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != text+"\r\n" {
		t.Fatalf("ECHO %s: %q, %v", text, line, err)
	}
}

// stopServe sends SIGTERM to pid and waits until every process of the run has exited
// (the logs' pipe ends).
func stopServe(t *testing.T, pid int, logs *procLogs) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-logs.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM:\n%s", logs)
	}
}

// TestSocketActivation: started as systemd starts a socket-activated service — the
// listening socket as descriptor 3, LISTEN_FDS=1 and LISTEN_PID its own pid (set by a
// shell that then execs the command) — serve listens on that socket: the address is
// still bound by the test, so binding it again would fail. A SIGUSR2 hands it on.
// With LISTEN_PID naming another process, the socket is not taken, and the bind fails.
func TestSocketActivation(t *testing.T) {
	bin := buildCommand(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addr := ln.Addr().String()

	t.Run("LISTEN_PID=other", func(t *testing.T) {
		cmd := exec.Command("sh", "-c", `LISTEN_PID=1 LISTEN_FDS=1 exec "$0" serve -addr "$1"`, bin, addr)
		cmd.ExtraFiles = []*os.File{f}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "address already in use") {
			t.Fatalf("exit %v, want 1 and the bind's failure:\n%s", err, out)
		}
	})

	cmd, logs, got := startServeProcess(t, "sh", []*os.File{f}, nil,
		"-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=door.socket exec "$0" serve -addr "$1"`, bin, addr)
	if got != addr {
		t.Fatalf("listening on %s, want the inherited %s", got, addr)
	}
	logs.wait(t, "the inherited socket", 0, time.Now().Add(10*time.Second), func(ev logEvent) bool {
		return ev.msg == "inherited sockets" && ev.attrs["count"] == "1"
	})
	echoOnce(t, addr, "activated")
	// Handed on: the new process inherits it from this one.
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	ev, _ := logs.wait(t, "the hand-over", 0, time.Now().Add(30*time.Second), func(ev logEvent) bool {
		return ev.msg == "handed over" || ev.msg == "hand-over failed; still serving"
	})
	if ev.msg != "handed over" {
		t.Fatalf("%s: %s", ev.msg, ev.attrs["err"])
	}
	echoOnce(t, addr, "handed-on")
	newPid, _ := strconv.Atoi(ev.attrs["new_pid"])
	if _, err := waitExited(cmd.Process.Pid, time.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	echoOnce(t, addr, "after")
	stopServe(t, newPid, logs)
}

// TestRestartFailsKeepsServing: when the new process cannot come up — here its
// configuration file was broken after the start — the old one logs it and keeps serving
// on the same sockets; a later SIGUSR2, the file mended, hands over.
func TestRestartFailsKeepsServing(t *testing.T) {
	bin := buildCommand(t)
	cfg := filepath.Join(t.TempDir(), "servers.yaml")
	good := "drain_timeout: 5s\nservers:\n  - app: commandline\n    listeners:\n      - addr: 127.0.0.1:0\n"
	if err := os.WriteFile(cfg, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, logs, addr := startServeProcess(t, bin, nil, nil, "serve", "-config", cfg)
	pid := cmd.Process.Pid
	echoOnce(t, addr, "first")
	if err := os.WriteFile(cfg, []byte("servers: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	ev, i := logs.wait(t, "the failed hand-over", 0, time.Now().Add(30*time.Second), func(ev logEvent) bool {
		return ev.msg == "handed over" || ev.msg == "hand-over failed; still serving"
	})
	if ev.msg != "hand-over failed; still serving" || !strings.Contains(ev.attrs["err"], "exited before serving") {
		t.Fatalf("%s: %s", ev.msg, ev.attrs["err"])
	}
	if exited(pid) {
		t.Fatal("the old process exited")
	}
	echoOnce(t, addr, "still")
	if err := os.WriteFile(cfg, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	ev, _ = logs.wait(t, "the hand-over", i+1, time.Now().Add(30*time.Second), func(ev logEvent) bool {
		return ev.msg == "handed over" || ev.msg == "hand-over failed; still serving"
	})
	if ev.msg != "handed over" {
		t.Fatalf("%s: %s", ev.msg, ev.attrs["err"])
	}
	newPid, _ := strconv.Atoi(ev.attrs["new_pid"])
	echoOnce(t, addr, "new")
	stopServe(t, newPid, logs)
}

// TestHeldSocketsStayNonBlocking: passing a held socket to a process (exec.Cmd takes its
// descriptor with Fd) leaves it non-blocking. A blocking listening socket would keep this
// process's accept in the kernel, where closing the listener cannot end it: after a
// hand-over whose new process failed, the old one's drain would never return.
func TestHeldSocketsStayNonBlocking(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		f, err := bind(network, "", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command("true")
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var flags uintptr
		var errno syscall.Errno
		rc.Control(func(fd uintptr) {
			flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		})
		if errno != 0 {
			t.Fatal(errno)
		}
		if flags&syscall.O_NONBLOCK == 0 {
			t.Errorf("%s: the socket is blocking after it was passed to a process", network)
		}
	}
}
