//go:build !unix

package loadgen

import "time"

// selfCPU is not measured on this platform.
func selfCPU() time.Duration { return 0 }

// raiseFileLimit has no limit to raise on this platform: it reports none.
func raiseFileLimit() (uint64, error) { return ^uint64(0), nil }
