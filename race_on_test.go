//go:build race

package supersocket

// raceEnabled: the race detector instruments allocations, so allocation counts are
// checked only without it (go test without -race; the benchmarks report them too).
const raceEnabled = true
