package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/internal/proc"
)

// The accept run (-accept): -conns clients each open a connection, make one exchange,
// close it and start over, for -duration. What it measures is a server's cost of a new
// connection — accept, session set-up, one request, teardown — as new connections per
// second and the server's CPU per connection. A client closes with a reset (SO_LINGER
// 0), so neither side keeps the connection in TIME_WAIT and a long run does not run out
// of ephemeral ports.

// acceptResult is what an accept run measured.
type acceptResult struct {
	elapsed   time.Duration
	conns     int64 // connections that made their exchange while recording
	hist      *histogram
	errs      errorTally
	serverCPU time.Duration // -1 when not measured
	clientCPU time.Duration
	serverErr error
}

// runAccept runs o.conns clients of connections with one exchange each.
func runAccept(ctx context.Context, o *options, cd *codec) (*acceptResult, error) {
	if err := checkFileLimit(o.conns + 64); err != nil {
		return nil, err
	}
	res := &acceptResult{hist: newHistogram(), serverCPU: -1}
	var recording, stopping atomic.Bool
	var counted atomic.Int64
	var mu sync.Mutex // res.errs, res.hist
	var wg sync.WaitGroup
	for w := range o.conns {
		wg.Go(func() {
			h := newHistogram()
			buf := make([]byte, cd.reqLen+cd.repLen)
			var n uint64
			for !stopping.Load() && ctx.Err() == nil {
				start := time.Now()
				err := acceptOnce(ctx, o, cd, uint64(w)<<32|n, buf)
				n++
				if err != nil {
					mu.Lock()
					res.errs.add(errIdle, err)
					mu.Unlock()
					continue
				}
				if recording.Load() {
					h.record(int64(time.Since(start)))
					counted.Add(1)
				}
			}
			mu.Lock()
			res.hist.merge(h)
			mu.Unlock()
		})
	}
	if o.warmup > 0 {
		select {
		case <-time.After(o.warmup):
		case <-ctx.Done():
		}
	}
	var cpu0, self0 time.Duration
	if o.serverPID > 0 {
		cpu0, res.serverErr = proc.CPU(o.serverPID)
	}
	self0 = selfCPU()
	recStart := time.Now()
	recording.Store(true)
	select {
	case <-time.After(o.duration):
	case <-ctx.Done():
	}
	recording.Store(false)
	res.elapsed = time.Since(recStart)
	res.conns = counted.Load()
	res.clientCPU = selfCPU() - self0
	if o.serverPID > 0 && res.serverErr == nil {
		var cpu1 time.Duration
		if cpu1, res.serverErr = proc.CPU(o.serverPID); res.serverErr == nil {
			res.serverCPU = cpu1 - cpu0
		}
	}
	stopping.Store(true)
	wg.Wait()
	return res, nil
}

// acceptOnce opens a connection, makes one exchange and resets it.
func acceptOnce(ctx context.Context, o *options, cd *codec, id uint64, buf []byte) error {
	d := net.Dialer{Timeout: o.timeout}
	c, err := dial(ctx, d, o.addr, o.handshake(), o.timeout)
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	defer c.Close()
	if o.wsPath != "" {
		return exchangeOnceWS(c, cd, id, o.timeout)
	}
	return exchangeOnce(c, cd, id, buf, o.timeout)
}

// acceptJSON is the result of an accept run: msgs_per_sec counts connections (each with
// its one exchange), server_cpu_ns_per_msg is per connection, latency_us times a whole
// connection, from dial to its reply.
func acceptJSON(o *options, res *acceptResult) *resultJSON {
	secs := res.elapsed.Seconds()
	h := res.hist
	out := &resultJSON{
		Mode: "accept", Label: o.label, Proto: o.proto, Transport: o.transport(), LinePrefix: o.linePrefix, Addr: o.addr,
		Conns: o.conns, Size: o.size, Time: time.Now().UTC().Format(time.RFC3339),
		Seconds: secs, Msgs: res.conns,
		LatencyUS: h.latency(),
		Errors:    res.errs.total(), ErrorKinds: res.errs.kinds, ErrorSample: res.errs.summary(),
	}
	if secs > 0 {
		out.MsgsPerSec = float64(res.conns) / secs
		out.ClientCPUUtil = res.clientCPU.Seconds() / secs
	}
	if o.serverPID > 0 {
		out.ServerPID = o.serverPID
		if res.conns > 0 || res.serverErr != nil {
			out.setServerCPU(res.serverCPU, res.serverErr, res.conns, secs)
		}
	}
	return out
}

// acceptMain makes an accept run and prints its results; it returns the exit status.
func acceptMain(ctx context.Context, o *options, cd *codec, stdout, stderr io.Writer) int {
	res, err := runAccept(ctx, o, cd)
	if err != nil {
		fmt.Fprintf(stderr, "supersocket bench: %v\n", err)
		return cli.ExitError
	}
	out := acceptJSON(o, res)
	if o.jsonOut {
		writeJSON(stdout, out)
	} else {
		fmt.Fprintf(stdout, "%s %s: %d clients, each a connection with one exchange after another, %v\n", o.label, o.addr, o.conns, res.elapsed.Round(time.Millisecond))
		fmt.Fprintf(stdout, "  connections/s      %s\n", fmtRate(out.MsgsPerSec))
		if out.ServerCPUNsPerMsg != nil {
			fmt.Fprintf(stdout, "  server CPU/conn    %s\n", fmtDur(*out.ServerCPUNsPerMsg))
		}
		fmt.Fprintf(stdout, "  connection p50/p99 %s / %s (dial to reply)\n", fmtDur(out.LatencyUS.P50*1e3), fmtDur(out.LatencyUS.P99*1e3))
		fmt.Fprintf(stdout, "  load tool CPU      %.2f cores\n", out.ClientCPUUtil)
		fmt.Fprintf(stdout, "  errors             %d %s\n", out.Errors, out.ErrorSample)
	}
	if out.Errors > 0 {
		return cli.ExitError
	}
	return cli.ExitOK
}

// writeAcceptReport prints the accept runs: a row per server and client count (medians),
// and the epoll engine's target against gnet.
func writeAcceptReport(w io.Writer, runs map[string]map[int][]resultJSON, order []string) {
	fmt.Fprintln(w, "New connections: clients each open a connection, make one exchange and reset it, over and over (medians).")
	fmt.Fprintf(w, "%-17s %8s %12s %12s %10s %9s %4s %s\n", "server", "clients", "conns/s", "CPU/conn", "p99", "load CPU", "runs", "errors")
	rates := map[string]map[int]float64{}
	var clients []int
	seen := map[int]bool{}
	for _, l := range order {
		for n := range runs[l] {
			if !seen[n] {
				seen[n] = true
				clients = append(clients, n)
			}
		}
	}
	slices.Sort(clients)
	for _, n := range clients {
		for _, l := range order {
			rs := runs[l][n]
			if len(rs) == 0 {
				continue
			}
			st := summarize(rs)
			if rates[l] == nil {
				rates[l] = map[int]float64{}
			}
			rates[l][n] = st.msgsPerSec
			fmt.Fprintf(w, "%-17s %8d %12s %12s %10s %8.2f %4d %d\n", l, n, fmtRate(st.msgsPerSec), fmtNs(st.cpuPerMsg),
				fmtNs(st.p99*1e3), st.clientUtil, st.runs, st.errors)
		}
	}
	for _, n := range clients {
		ep, okE := rates[labelEpoll][n]
		g, okG := rates[labelGnet][n]
		if okE && okG && g > 0 {
			fmt.Fprintf(w, "target %s ÷ %s new connections/s >= %.2f with %d clients: %.2f×, %s\n",
				labelEpoll, labelGnet, targetAcceptVsGnet, n, ep/g, verdict(ep/g < targetAcceptVsGnet))
		}
	}
	fmt.Fprintln(w)
}
