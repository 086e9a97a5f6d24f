package soak

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/supersocket-go/supersocket/internal/proc"
)

// sample is one row of the table.
type sample struct {
	phase      string
	at         time.Duration
	rssKB      int64
	goroutines int
	fds        int
	heapKB     uint64
	sessions   int
	requests   int64
	errors     int64
}

// measure samples the process, prints the row and keeps it.
func (r *runner) measure(phase string) sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := sample{
		phase:      phase,
		at:         time.Since(r.start),
		rssKB:      rssKB(),
		goroutines: runtime.NumGoroutine(),
		fds:        openFDs(),
		heapKB:     ms.HeapInuse >> 10,
		sessions:   r.sessions(),
		requests:   r.requests.Load(),
		errors:     r.errs.total.Load(),
	}
	r.samples = append(r.samples, s)
	fmt.Fprintf(r.stdout, "%9.1f  %-7s %10d %10d %6d %10d %8d %10d %6d\n", s.at.Seconds(), s.phase, s.rssKB, s.goroutines, s.fds, s.heapKB, s.sessions, s.requests, s.errors)
	if r.csv != nil {
		fmt.Fprintf(r.csv, "%.1f,%s,%d,%d,%d,%d,%d,%d,%d\n", s.at.Seconds(), s.phase, s.rssKB, s.goroutines, s.fds, s.heapKB, s.sessions, s.requests, s.errors)
	}
	return s
}

// rssKB returns the process's resident set size in KiB (VmRSS), or -1.
func rssKB() int64 {
	n, err := proc.RSS(os.Getpid())
	if err != nil {
		return -1
	}
	return n >> 10
}

// openFDs counts the process's open file descriptors, or -1.
func openFDs() int {
	n, err := proc.OpenFiles(os.Getpid())
	if err != nil {
		return -1
	}
	return n
}
