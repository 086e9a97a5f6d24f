package soak

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
)

// summary prints start / end / max and the totals; it reports whether the run passed.
func (r *runner) summary(start, end sample, drained time.Duration, stopped *sample) bool {
	w := r.stdout
	fmt.Fprintf(w, "\nsummary (end = after the load stopped and %v of draining, servers still running):\n", drained.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tstart\tend\tmax\tend-start\t")
	maxOf := func(f func(sample) int64) int64 {
		var m int64
		for _, s := range r.samples {
			m = max(m, f(s))
		}
		return m
	}
	rows := []struct {
		name string
		f    func(sample) int64
	}{
		{"RSS KiB", func(s sample) int64 { return s.rssKB }},
		{"goroutines", func(s sample) int64 { return int64(s.goroutines) }},
		{"fds", func(s sample) int64 { return int64(s.fds) }},
		{"heap KiB", func(s sample) int64 { return int64(s.heapKB) }},
		{"sessions", func(s sample) int64 { return int64(s.sessions) }},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%+d\t\n", row.name, row.f(start), row.f(end), maxOf(row.f), row.f(end)-row.f(start))
	}
	tw.Flush()
	if stopped != nil {
		fmt.Fprintf(w, "after Shutdown: %d goroutines, %d fds, RSS %d KiB\n", stopped.goroutines, stopped.fds, stopped.rssKB)
	}
	fmt.Fprintf(w, "requests: %d round trips checked (%d pipelined, %d in %d churn cycles, %d UDP); %d UDP round trips unanswered in 2s (UDP may drop)\n",
		r.requests.Load(), r.lineReqs.Load(), r.churnReqs.Load(), r.cycles.Load(), r.udpReqs.Load(), r.udpLost.Load())
	fmt.Fprintf(w, "broadcasts: %d queued, %d received by the pipelined and churn clients; bad input: %d sent, %d cut off as expected\n",
		r.broadcasts.Load(), r.pushes.Load(), r.badSent.Load(), r.badClosed.Load())
	for _, s := range []struct {
		name string
		srv  apps.Server
	}{{"commandline", r.line}, {"echo-udp", r.udp}} {
		st := s.srv.Stats() // counters outlive Shutdown
		var closes []string
		for reason, n := range st.Closes {
			if n > 0 {
				closes = append(closes, fmt.Sprintf("%v=%d", supersocket.CloseReason(reason), n))
			}
		}
		slices.Sort(closes)
		fmt.Fprintf(w, "server %s: accepted %d, refused %d, requests %d, handshake failures %d, datagrams dropped %d, send queue full %d, closes {%s}\n",
			s.name, st.Accepted, st.Refused, st.Requests, st.HandshakeFailures, st.DatagramsDropped, st.SendQueueFull, strings.Join(closes, " "))
	}
	errs := r.errs.total.Load()
	fmt.Fprintf(w, "errors: %d", errs)
	r.errs.mu.Lock()
	if len(r.errs.byKind) > 0 {
		var kinds []string
		for k, n := range r.errs.byKind {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		}
		slices.Sort(kinds)
		fmt.Fprintf(w, " {%s}", strings.Join(kinds, " "))
	}
	fmt.Fprintln(w)
	for _, e := range r.errs.examples {
		fmt.Fprintf(w, "  e.g. %s\n", e)
	}
	r.errs.mu.Unlock()

	ok := true
	if d := end.goroutines - start.goroutines; d > r.o.marginGoroutines {
		fmt.Fprintf(w, "FAIL: %d goroutines at the end, %d more than at the start (margin %d)\n", end.goroutines, d, r.o.marginGoroutines)
		ok = false
	}
	if d := end.fds - start.fds; d > r.o.marginFDs {
		fmt.Fprintf(w, "FAIL: %d file descriptors at the end, %d more than at the start (margin %d)\n", end.fds, d, r.o.marginFDs)
		ok = false
	}
	if end.sessions != 0 {
		fmt.Fprintf(w, "FAIL: %d sessions still open after the load stopped\n", end.sessions)
		ok = false
	}
	if errs > r.o.maxErrors {
		fmt.Fprintf(w, "FAIL: %d client errors (tolerated: %d)\n", errs, r.o.maxErrors)
		ok = false
	}
	if r.requests.Load() == 0 {
		fmt.Fprintln(w, "FAIL: no request completed")
		ok = false
	}
	if ok {
		fmt.Fprintf(w, "PASS: goroutines %+d, fds %+d between start and end (margins %d, %d)\n",
			end.goroutines-start.goroutines, end.fds-start.fds, r.o.marginGoroutines, r.o.marginFDs)
	}
	return ok
}
