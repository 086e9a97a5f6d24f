//go:build !unix

package supersocket

import "net"

// unread cannot peek off unix: a drain closes on the quiet time alone.
func unread(net.Conn) bool { return false }
