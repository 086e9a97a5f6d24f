//go:build !unix

package netwrite

import (
	"errors"
	"net"
)

// rawTrier has no non-blocking write off unix: init refuses every connection.
type rawTrier struct{}

var errUnsupported = errors.New("netwrite: no non-blocking write on this platform")

func (*rawTrier) init(net.Conn) bool             { return false }
func (*rawTrier) try([]byte) (int, error)        { return 0, errUnsupported }
func (*rawTrier) tryVec([][]byte) (int64, error) { return 0, errUnsupported }
