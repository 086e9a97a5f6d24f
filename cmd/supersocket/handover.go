package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket"
)

// Restarts that drop nothing. serve holds every listening socket as a file of its own
// (bound here, or inherited from systemd's socket activation or from the process before
// it), and each server listens on a duplicate (ListenerConfig.File). On SIGUSR2 it
// starts the same executable with the same arguments, the sockets as descriptors 3
// onwards (SUPERSOCKET_LISTEN_FDS, read by supersocket.InheritedFiles) and the write end
// of a readiness pipe after them (SUPERSOCKET_READY_FD). Both processes accept on the
// same sockets until the new one writes to the pipe that it is serving; the old one
// then drains (Server.Drain) and exits. A connection that arrives meanwhile waits in
// the socket's one accept queue, which both processes share, so none is refused. If the
// new process exits, or does not report within handoverWait, the old one keeps serving.

const (
	// envReadyFD names the descriptor of the readiness pipe a new process writes to once
	// every server is serving.
	envReadyFD = "SUPERSOCKET_READY_FD"
	// handoverWait bounds how long the old process waits for the new one to serve.
	handoverWait = 30 * time.Second
	// metricsSocket names the metrics endpoint's socket among the handed-over ones.
	metricsSocket = "metrics"
	// defaultDrainTimeout is -drain-timeout's default.
	defaultDrainTimeout = 30 * time.Second
)

// heldSockets are the listening sockets this process holds for a hand-over, in the
// order the servers' listeners were given them, each named for the new process's
// Config.Inherit (the listener's Addr) or metricsSocket.
type heldSockets struct {
	files []*os.File
	names []string
}

// close closes the held files: the servers' own duplicates are what they accept on.
func (h *heldSockets) close() {
	for _, f := range h.files {
		f.Close()
	}
	h.files, h.names = nil, nil
}

// holdListeners gives every listener of specs a socket: an inherited one (from systemd or
// the process before), else one bound here; each is held as a file, and the listener
// takes it as its File. It returns what it holds and the inherited files no listener
// took (the metrics endpoint's, if any, among them).
func holdListeners(specs []serverSpec, inherited []supersocket.InheritedFile) (*heldSockets, []supersocket.InheritedFile, error) {
	h := &heldSockets{}
	for i := range specs {
		cfg := &specs[i].cfg
		inherited = cfg.Inherit(inherited)
		for j := range cfg.Listeners {
			l := &cfg.Listeners[j]
			if l.File == nil {
				f, err := bind(l.Network, cfg.Mode, l.Addr)
				if err != nil {
					h.close()
					return nil, inherited, fmt.Errorf("%s: %w", cfg.Name, err)
				}
				l.File = f
			}
			h.files = append(h.files, l.File)
			h.names = append(h.names, l.Addr)
		}
	}
	return h, inherited, nil
}

// bind binds addr for a listener of the given network (or, when empty, the server's
// mode) and returns the socket as a file.
func bind(network, mode, addr string) (*os.File, error) {
	if network == "" {
		network = mode
	}
	if strings.HasPrefix(network, "udp") {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, err
		}
		defer pc.Close()
		return socketFile(pc.(*net.UDPConn), addr)
	}
	if network != "tcp4" && network != "tcp6" {
		network = "tcp" // ws and tcp alike
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	defer ln.Close() // the file is a duplicate: the socket stays open
	return socketFile(ln.(*net.TCPListener), addr)
}

// metricsListener returns the metrics endpoint's listener: the inherited one named
// metricsSocket and bound to addr (any port when addr's is 0: the one the process before
// picked), else a new one; and the file held for a hand-over.
func metricsListener(addr string, inherited []supersocket.InheritedFile) (net.Listener, *os.File, error) {
	for _, f := range inherited {
		if f.Network == "tcp" && f.Name == metricsSocket && boundTo(f.Addr, addr) {
			ln, err := net.FileListener(f.File)
			if err != nil {
				return nil, nil, err
			}
			return ln, f.File, nil
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	f, err := socketFile(ln.(*net.TCPListener), addr)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, f, nil
}

// boundTo reports whether a is the address addr names: the same IP (both unspecified,
// for an empty or unspecified host) and port (any, for 0).
func boundTo(a net.Addr, addr string) bool {
	ta, ok := a.(*net.TCPAddr)
	want, err := net.ResolveTCPAddr("tcp", addr)
	if !ok || err != nil {
		return false
	}
	if want.Port != 0 && want.Port != ta.Port {
		return false
	}
	if want.IP == nil || want.IP.IsUnspecified() {
		return ta.IP == nil || ta.IP.IsUnspecified()
	}
	return want.IP.Equal(ta.IP)
}

// closeUnused closes the inherited files nothing took, logging each.
func closeUnused(rest []supersocket.InheritedFile, log *slog.Logger) {
	for _, f := range rest {
		log.Warn("inherited socket matches no listener; closing it", "name", f.Name, "network", f.Network, "addr", f.Addr)
		f.File.Close()
	}
}

// handover starts the new process with the held sockets and waits until it reports that
// it is serving (nil), or exits, or handoverWait passes (an error; the new process is
// then killed if it still runs). The new process's output goes where this one's does.
func handover(h *heldSockets, stderr io.Writer, log *slog.Logger) (pid int, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("finding the executable: %w", err)
	}
	ready, readyW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer ready.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.ExtraFiles = append(append([]*os.File(nil), h.files...), readyW)
	cmd.Env = append(os.Environ(),
		supersocket.EnvHandoverFDs+"="+strconv.Itoa(len(h.files)),
		supersocket.EnvHandoverFDNames+"="+strings.Join(h.names, ","),
		envReadyFD+"="+strconv.Itoa(3+len(h.files)),
	)
	cmd.Stdout = os.Stdout
	cmd.Stderr = stderr
	if f, ok := stderr.(*os.File); ok {
		cmd.Stderr = f // passed as the descriptor itself: no copying goroutine to outlive us
	}
	err = cmd.Start()
	readyW.Close() // the new process's copy is the only writer left: its exit is EOF here
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", exe, err)
	}
	pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it if it fails; a live one outlives us
	ready.SetReadDeadline(time.Now().Add(handoverWait))
	line, rerr := readLine(ready)
	if rerr == nil && line == strconv.Itoa(pid) {
		return pid, nil
	}
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		cmd.Process.Kill()
		<-exited
		return pid, fmt.Errorf("the new process (pid %d) did not report serving within %v; killed it", pid, handoverWait)
	}
	select {
	case werr := <-exited:
		return pid, fmt.Errorf("the new process (pid %d) exited before serving: %v", pid, werr)
	case <-time.After(handoverWait):
		cmd.Process.Kill()
		<-exited
		return pid, fmt.Errorf("the new process (pid %d) closed its readiness pipe without serving (%q, %v); killed it", pid, line, rerr)
	}
}

// readLine reads up to a newline (a pid is short).
func readLine(r io.Reader) (string, error) {
	var b [32]byte
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if i := strings.IndexByte(string(b[:n]), '\n'); i >= 0 {
			return string(b[:i]), nil
		}
		if err != nil {
			return string(b[:n]), err
		}
	}
	return string(b[:n]), errors.New("no newline")
}

// reportReady tells whoever started this process that every server is serving: the old
// process of a hand-over (its readiness pipe: our pid), and systemd (READY=1, and
// MAINPID= after a hand-over, so that the service's main process is this one once the
// old one exits). Called once, after every server has started.
func reportReady(log *slog.Logger) {
	handedOver := false
	if v := os.Getenv(envReadyFD); v != "" {
		os.Unsetenv(envReadyFD)
		fd, err := strconv.Atoi(v)
		if err == nil && fd > 2 {
			f := os.NewFile(uintptr(fd), "ready")
			if _, err = fmt.Fprintf(f, "%d\n", os.Getpid()); err == nil {
				handedOver = true
			}
			f.Close()
		}
		if err != nil {
			log.Error("cannot report readiness to the process handing over", "fd", v, "err", err)
		}
	}
	msg := "READY=1"
	if handedOver {
		msg = "MAINPID=" + strconv.Itoa(os.Getpid()) + "\n" + msg
	}
	if err := sdNotify(msg); err != nil {
		log.Warn("systemd notify failed", "err", err)
	}
}

// sdNotify sends msg to systemd's notification socket (sd_notify(3)); without
// NOTIFY_SOCKET it does nothing.
func sdNotify(msg string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(msg))
	return err
}

// drainAll drains every server at once, bounded by timeout; stopNow ending (a further
// signal) stops what is left at once. It returns each server's error.
func drainAll(ctx context.Context, servers []namedServer, timeout time.Duration, stopNow <-chan struct{}, log *slog.Logger) []error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	errs := make([]error, len(servers))
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait := make(chan struct{}, len(servers))
		for i, s := range servers {
			go func() {
				defer func() { wait <- struct{}{} }()
				if err := s.srv.Drain(dctx); err != nil && !errors.Is(err, context.Canceled) {
					errs[i] = err
				}
			}()
		}
		for range servers {
			<-wait
		}
	}()
	select {
	case <-done:
	case <-stopNow:
		log.Warn("signal during the drain: stopping now")
		cancel()
		for _, s := range servers {
			s.srv.Stop()
		}
		<-done
	}
	for i, err := range errs {
		if errors.Is(err, context.DeadlineExceeded) {
			log.Warn("drain timeout: sessions left were closed", "server", servers[i].name, "drain_timeout", timeout)
			errs[i] = nil // the timeout is the configured end of a drain, not a failure
		}
	}
	return errs
}
