package netread

import "sync/atomic"

// Token is a connection's place in a Parker: non-zero while it is parked. Its owner keeps
// it beside the connection and passes it to Park and Unpark.
type Token struct{ v atomic.Uint32 }

// Parked reports whether the connection is parked. Cheap: Close paths call it first.
func (t *Token) Parked() bool { return t.v.Load() != 0 }

// Sleeper is a parked connection's owner, as the Parker sees it.
type Sleeper interface {
	// Closing reports that the owner is closing, so it must not park. Park asks it after
	// storing the token, and the owner's Close sets its closing state before it reads the
	// token (Unpark): whichever runs second sees the other, so a Close never misses a
	// park.
	Closing() bool
	// Resume continues the owner's work; the Parker runs it on a new goroutine.
	Resume()
}
