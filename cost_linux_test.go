//go:build linux

package supersocket

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// processCost is what this process has used so far: CPU time (getrusage) and read and
// write system calls (/proc/self/io). The benchmarks' client and server share the
// process, so both sides are in it; the difference between two builds is the server's.
type processCost struct {
	cpu      time.Duration
	syscalls int64
	ok       bool
}

func readCost() processCost {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return processCost{}
	}
	io, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return processCost{}
	}
	c := processCost{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ok: true}
	for line := range bytes.Lines(io) {
		name, value, _ := bytes.Cut(bytes.TrimSpace(line), []byte(": "))
		if string(name) == "syscr" || string(name) == "syscw" {
			n, _ := strconv.ParseInt(string(value), 10, 64)
			c.syscalls += n
		}
	}
	return c
}

// reportCostSince adds proc-cpu-ns/op and proc-syscalls/op (client and server together)
// to b's results.
func reportCostSince(b *testing.B, start processCost) {
	end := readCost()
	if !start.ok || !end.ok || b.N == 0 {
		return
	}
	b.ReportMetric(float64(end.cpu-start.cpu)/float64(b.N), "proc-cpu-ns/op")
	b.ReportMetric(float64(end.syscalls-start.syscalls)/float64(b.N), "proc-syscalls/op")
}
