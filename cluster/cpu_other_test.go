//go:build !unix

package cluster

import "time"

// processCPU is not measured off Unix: the benchmarks report 0 CPU per message there.
func processCPU() time.Duration { return 0 }
