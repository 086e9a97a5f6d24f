//go:build !unix

package netread

import "net"

// newRawReader has no buffer-releasing path off Unix; Reader falls back to net.Conn.Read.
func newRawReader(net.Conn) rawReader { return nil }
