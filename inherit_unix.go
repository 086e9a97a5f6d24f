//go:build unix

package supersocket

import (
	"fmt"
	"os"
	"syscall"
)

func closeOnExec(fd int) { syscall.CloseOnExec(fd) }

// sockType returns "tcp" for a stream socket, "udp" for a datagram one, "" otherwise.
func sockType(f *os.File) string {
	rc, err := f.SyscallConn()
	if err != nil {
		return ""
	}
	typ := -1
	rc.Control(func(fd uintptr) {
		if t, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE); err == nil {
			typ = t
		}
	})
	switch typ {
	case syscall.SOCK_STREAM:
		return "tcp"
	case syscall.SOCK_DGRAM:
		return "udp"
	}
	return ""
}

// fileIsSocket checks that f is a socket of the type the listener serves: a stream for
// TCP, datagrams for UDP.
func fileIsSocket(f *os.File, udp bool) error {
	switch want, got := map[bool]string{false: "tcp", true: "udp"}[udp], sockType(f); {
	case got == "":
		return fmt.Errorf("%s is not a stream or datagram socket", f.Name())
	case got != want:
		return fmt.Errorf("%s is a %s socket; the listener serves %s", f.Name(), got, want)
	}
	return nil
}
