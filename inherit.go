package supersocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Listeners that exist before Start: given by the application (ListenerConfig.Listener,
// PacketConn), or inherited as file descriptors (ListenerConfig.File) from systemd's
// socket activation or from the process a restart hands its sockets over from (the CLI's
// SIGUSR2). Start uses them instead of binding Addr.

// errGivenUsed refuses a second Start over a given listener that the last stop closed.
var errGivenUsed = errors.New("given as a net.Listener or net.PacketConn, it was closed by the last stop; give a new one (or a File, which a server can start from again)")

// listen returns the TCP listener of Config.Listeners[i]: the given one, one made from
// its File, or a new one bound to its address.
func (srv *Server[T]) listen(lc net.ListenConfig, i int, network string, l ListenerConfig) (net.Listener, error) {
	switch {
	case l.Listener != nil:
		if srv.door.given[i] {
			return nil, errGivenUsed
		}
		srv.door.given[i] = true
		return l.Listener, nil
	case l.File != nil:
		ln, err := net.FileListener(l.File) // a duplicate: the File stays the caller's
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", l.File.Name(), err)
		}
		return ln, nil
	}
	return lc.Listen(context.Background(), network, l.Addr)
}

// listenPacket is listen for a UDP listener.
func (srv *Server[T]) listenPacket(lc net.ListenConfig, i int, l ListenerConfig) (*net.UDPConn, error) {
	var pc net.PacketConn
	var err error
	switch {
	case l.PacketConn != nil:
		if srv.door.given[i] {
			return nil, errGivenUsed
		}
		pc = l.PacketConn
	case l.File != nil:
		if pc, err = net.FilePacketConn(l.File); err != nil {
			return nil, fmt.Errorf("file %s: %w", l.File.Name(), err)
		}
	default:
		if pc, err = lc.ListenPacket(context.Background(), l.Network, l.Addr); err != nil {
			return nil, err
		}
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		if l.PacketConn == nil {
			pc.Close()
		}
		return nil, fmt.Errorf("a %T is not a UDP socket", pc)
	}
	if l.PacketConn != nil {
		srv.door.given[i] = true
	}
	return uc, nil
}

// givenDefaults checks a listener's given socket, if any, against its network; Addr may
// then be left empty. config.go's withDefaults calls it before checking Addr, and skips
// that check when it reports a socket.
func (l *ListenerConfig) givenDefaults(field string) (given bool, err error) {
	n := 0
	for _, set := range []bool{l.Listener != nil, l.PacketConn != nil, l.File != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return false, nil
	case n > 1:
		return true, configError(field, "Listener, PacketConn and File are alternatives: set one")
	case l.Listener != nil && isUDP(l.Network):
		return true, configError(field+".Listener", "a net.Listener on a %s listener; UDP takes a PacketConn", l.Network)
	case l.PacketConn != nil && !isUDP(l.Network):
		return true, configError(field+".PacketConn", "a net.PacketConn on a %s listener; set Network to udp", l.Network)
	case l.File != nil:
		if err := fileIsSocket(l.File, isUDP(l.Network)); err != nil {
			return true, configError(field+".File", "%v", err)
		}
	}
	return true, nil
}

// InheritedFile is a socket this process inherited (InheritedFiles).
type InheritedFile struct {
	File *os.File
	// Name is the name its passer gave it: systemd's FileDescriptorName= (by default the
	// socket unit's name), or, from a restart's hand-over, the Addr of the listener it
	// served.
	Name string
	// Network is "tcp" for a stream socket, "udp" for a datagram one.
	Network string
	// Addr is the address it is bound to.
	Addr net.Addr
}

// The environment of inherited sockets: systemd's socket activation (sd_listen_fds(3)),
// and supersocket's own for a restart's hand-over, which has no process ID to check
// (the new process's is not known before it starts) and is set only by the process that
// execs it.
const (
	envListenFDs     = "LISTEN_FDS"
	envListenPID     = "LISTEN_PID"
	envListenFDNames = "LISTEN_FDNAMES"
	// EnvHandoverFDs and EnvHandoverFDNames pass a restart's sockets: how many, from
	// descriptor 3 on, and their names (the listeners' addresses), comma-separated.
	EnvHandoverFDs     = "SUPERSOCKET_LISTEN_FDS"
	EnvHandoverFDNames = "SUPERSOCKET_LISTEN_FDNAMES"
)

// firstInheritedFD is where inherited descriptors start (SD_LISTEN_FDS_START).
const firstInheritedFD = 3

// InheritedFiles returns the sockets this process inherited: from a restart's
// hand-over (SUPERSOCKET_LISTEN_FDS), or from systemd's socket activation (LISTEN_FDS,
// when LISTEN_PID is this process), descriptors 3 onwards, named by *_FDNAMES. It unsets
// those variables, so that a process this one starts does not take the descriptors for
// its own, and marks the descriptors close-on-exec. None inherited: nil, nil. Call it
// once, early; match the files to listeners with Config.Inherit.
func InheritedFiles() ([]InheritedFile, error) {
	n, names, err := inheritedEnv()
	if err != nil || n == 0 {
		return nil, err
	}
	files := make([]InheritedFile, 0, n)
	var errs []error
	for i := range n {
		fd := firstInheritedFD + i
		name := ""
		if i < len(names) {
			name = names[i]
		}
		f, err := inheritFD(fd, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, f)
	}
	return files, errors.Join(errs...)
}

// inheritedEnv reads and unsets the variables: the hand-over's first, systemd's if this
// process is LISTEN_PID.
func inheritedEnv() (n int, names []string, err error) {
	defer func() {
		for _, v := range []string{EnvHandoverFDs, EnvHandoverFDNames, envListenFDs, envListenPID, envListenFDNames} {
			os.Unsetenv(v)
		}
	}()
	// The hand-over's names are addresses, so commas separate them; systemd's are
	// colon-separated.
	count, namesVar, sep := os.Getenv(EnvHandoverFDs), EnvHandoverFDNames, ","
	if count == "" {
		if pid := os.Getenv(envListenPID); pid == "" || pid != strconv.Itoa(os.Getpid()) {
			return 0, nil, nil
		}
		count, namesVar, sep = os.Getenv(envListenFDs), envListenFDNames, ":"
	}
	if count == "" {
		return 0, nil, nil
	}
	if n, err = strconv.Atoi(count); err != nil || n < 0 || n > 1024 {
		return 0, nil, fmt.Errorf("supersocket: inherited sockets: %q is not a count of descriptors", count)
	}
	if v := os.Getenv(namesVar); v != "" {
		names = strings.Split(v, sep)
	}
	return n, names, nil
}

// inheritFD makes the InheritedFile of descriptor fd.
func inheritFD(fd int, name string) (InheritedFile, error) {
	closeOnExec(fd)
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return InheritedFile{}, fmt.Errorf("supersocket: inherited descriptor %d is not valid", fd)
	}
	inf := InheritedFile{File: f, Name: name}
	switch sockType(f) {
	case "tcp":
		ln, err := net.FileListener(f)
		if err != nil {
			return inf, fmt.Errorf("supersocket: inherited descriptor %d (%s): %w", fd, name, err)
		}
		inf.Network, inf.Addr = "tcp", ln.Addr()
		ln.Close() // a duplicate
	case "udp":
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return inf, fmt.Errorf("supersocket: inherited descriptor %d (%s): %w", fd, name, err)
		}
		inf.Network, inf.Addr = "udp", pc.LocalAddr()
		pc.Close()
	default:
		return inf, fmt.Errorf("supersocket: inherited descriptor %d (%s) is not a stream or datagram socket", fd, name)
	}
	return inf, nil
}

// Inherit gives each of c's listeners that has none of Listener, PacketConn or File the
// inherited socket meant for it: the first of its kind (a stream socket for TCP, TLS and
// WebSocket listeners, a datagram one for UDP) named with the listener's Addr, else the
// first bound to Addr (the same IP and port; a port 0 never matches). It returns the
// files no listener took.
func (c *Config) Inherit(files []InheritedFile) (rest []InheritedFile) {
	used := make([]bool, len(files))
	pick := func(match func(InheritedFile) bool) int {
		for i, f := range files {
			if !used[i] && match(f) {
				used[i] = true
				return i
			}
		}
		return -1
	}
	c.Listeners = append([]ListenerConfig(nil), c.Listeners...)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Listener != nil || l.PacketConn != nil || l.File != nil {
			continue
		}
		network := l.Network
		if network == "" {
			network = c.Mode
		}
		kind := "tcp"
		if isUDP(network) {
			kind = "udp"
		}
		j := pick(func(f InheritedFile) bool { return f.Network == kind && f.Name == l.Addr })
		if j < 0 {
			j = pick(func(f InheritedFile) bool { return f.Network == kind && sameAddr(f.Addr, l.Addr) })
		}
		if j >= 0 {
			l.File = files[j].File
		}
	}
	for i, f := range files {
		if !used[i] {
			rest = append(rest, f)
		}
	}
	return rest
}

// sameAddr reports whether a bound address is host:port s, its host an IP.
func sameAddr(a net.Addr, s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "0" || a == nil {
		return false
	}
	bh, bp, err := net.SplitHostPort(a.String())
	if err != nil || bp != port {
		return false
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return bh == "::" || bh == "0.0.0.0"
	}
	ip, err1 := netipAddr(host)
	bip, err2 := netipAddr(bh)
	return err1 == nil && err2 == nil && ip == bip
}

func netipAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err
}
