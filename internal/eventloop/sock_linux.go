//go:build linux

package eventloop

import (
	"net/netip"
	"syscall"
	"unsafe"
)

// Sockaddr is a socket address as accept4 and getsockname fill it in.
type Sockaddr struct {
	raw syscall.RawSockaddrAny
	len uint32
}

// AddrPort returns the address, IPv4-mapped IPv6 addresses unmapped; zero for a family
// other than IPv4 and IPv6.
func (sa *Sockaddr) AddrPort() netip.AddrPort {
	switch sa.raw.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port(p.Port))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&sa.raw))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), port(p.Port))
	}
	return netip.AddrPort{}
}

// port converts a port in network byte order.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// Accept accepts one connection on the non-blocking listening socket lfd: a new
// non-blocking, close-on-exec socket and its peer's address in sa. EAGAIN: none is
// waiting. A raw system call: on a non-blocking socket accept4 never waits.
func Accept(lfd uintptr, sa *Sockaddr) (int, syscall.Errno) {
	for {
		sa.len = uint32(unsafe.Sizeof(sa.raw))
		r, _, errno := syscall.RawSyscall6(syscall.SYS_ACCEPT4, lfd, uintptr(unsafe.Pointer(&sa.raw)),
			uintptr(unsafe.Pointer(&sa.len)), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		if errno == syscall.EINTR || errno == syscall.ECONNABORTED {
			continue // a connection reset while in the backlog: take the next
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), 0
	}
}

// Dup returns a duplicate of fd, close-on-exec. It shares fd's open file (its
// non-blocking flag, and the socket).
func Dup(fd int) (int, error) {
	r, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// LocalAddr returns the local address of socket fd.
func LocalAddr(fd int) (netip.AddrPort, error) {
	var sa Sockaddr
	sa.len = uint32(unsafe.Sizeof(sa.raw))
	_, _, errno := syscall.RawSyscall(syscall.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), uintptr(unsafe.Pointer(&sa.len)))
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	return sa.AddrPort(), nil
}

// Read reads from the non-blocking socket fd into b (never waiting): the count, or the
// errno (EAGAIN: nothing to read); 0 and no errno is the peer's orderly close.
func Read(fd int, b []byte) (int, syscall.Errno) {
	for {
		r, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), 0
	}
}

// Shutdown shuts socket fd down in both directions: the peer sees the end, and the
// descriptor stays open.
func Shutdown(fd int) error { return syscall.Shutdown(fd, syscall.SHUT_RDWR) }

// Close closes fd, which also removes it from every epoll instance.
func Close(fd int) error { return syscall.Close(fd) }

// SetBuffers sets SO_RCVBUF and SO_SNDBUF where positive.
func SetBuffers(fd, read, write int) error {
	if read > 0 {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, read); err != nil {
			return err
		}
	}
	if write > 0 {
		return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, write)
	}
	return nil
}

// NoDelay sets TCP_NODELAY on fd (on a listening socket, the sockets it accepts inherit
// it).
func NoDelay(fd int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, v)
}
