//go:build race

package supersocket

// raceEnabled: the tests run under the race detector. It instruments allocations, so
// allocation counts are checked only without it (go test without -race; the benchmarks
// report them too); and it makes large buffers slow to allocate and copy, so the largest
// WebSocket conformance messages are left to runs without it.
const raceEnabled = true
