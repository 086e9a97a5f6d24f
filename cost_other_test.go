//go:build !linux

package supersocket

import "testing"

// processCost is Linux-only (getrusage and /proc/self/io); elsewhere no metric is added.
type processCost struct{}

func readCost() processCost                   { return processCost{} }
func reportCostSince(*testing.B, processCost) {}
