package loadgen

import (
	"fmt"
	"io"
	"strings"
)

// fmtDur formats nanoseconds for people: 850 ns, 12.3 µs, 1.23 ms, 2.50 s.
func fmtDur(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	default:
		return fmt.Sprintf("%.2f s", ns/1e9)
	}
}

// target names the server a run measured: "LABEL at ADDR", or ADDR without -label, and
// the WebSocket path with -ws.
func (o *options) target() string {
	t := o.addr
	if o.wsPath != "" {
		t = "ws://" + o.addr + o.wsPath
	}
	if o.label != "" {
		return o.label + " at " + t
	}
	return t
}

// rowWriter returns a function that prints one row of a table to w: the figure's name,
// padded to keyWidth, its value and a note, with no trailing spaces.
func rowWriter(w io.Writer, keyWidth int) func(name, value, note string) {
	return func(name, value, note string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-*s %14s   %s", keyWidth, name, value, note), " "))
	}
}

// errorNote is the note of a table's errors row: an example of each kind, if any.
func (r *resultJSON) errorNote() string {
	if r.Errors > 0 {
		return r.ErrorSample
	}
	return ""
}

// printLoad prints the table of a load run.
func printLoad(w io.Writer, o *options, cd *codec, out *resultJSON, res *loadResult) {
	name := o.proto
	if o.linePrefix != "" {
		name += fmt.Sprintf(" (prefix %q)", o.linePrefix)
	}
	fmt.Fprintf(w, "supersocket bench: %s → %s\n", name, o.target())
	fmt.Fprintf(w, "  %d connections × pipeline %d, %d-byte messages (%d-byte requests, %d-byte replies), %.2f s measured\n\n",
		o.conns, o.pipeline, o.size, cd.reqLen, cd.repLen, out.Seconds)
	row := rowWriter(w, 16)
	row("msgs", group(out.Msgs), "every reply checked byte for byte, in order")
	row("msgs/s", group(int64(out.MsgsPerSec)), "")
	row("MB/s", fmt.Sprintf("%.1f", out.MBPerSec), "reply bytes, one direction")
	h := res.hist
	row("latency p50", fmtDur(float64(h.percentile(50))), "")
	row("latency p99", fmtDur(float64(h.percentile(99))), "")
	row("latency p99.9", fmtDur(float64(h.percentile(99.9))), "")
	row("latency max", fmtDur(out.LatencyUS.Max*1e3), fmt.Sprintf("mean %s", fmtDur(out.LatencyUS.Mean*1e3)))
	row("errors", group(out.Errors), out.errorNote())
	switch {
	case out.ServerCPUNsPerMsg != nil:
		row("server CPU/msg", fmtDur(*out.ServerCPUNsPerMsg),
			fmt.Sprintf("pid %d: %.2f s user+sys, %.0f %% of a core", o.serverPID, *out.ServerCPUSec, 100**out.ServerCPUUtil))
	case out.ServerCPUError != "":
		row("server CPU/msg", "?", out.ServerCPUError)
	case o.serverPID == 0:
		row("server CPU/msg", "-", "give -server-pid PID to measure")
	}
	if out.ServerReadsPerMsg != nil {
		row("server syscalls", fmt.Sprintf("%.3f / %.3f", *out.ServerReadsPerMsg, *out.ServerWritesPerMsg), "reads / writes per message (/proc/PID/io)")
	}
	if out.Msgs > 0 {
		row("client CPU/msg", fmtDur(out.ClientCPUNsPerMsg), fmt.Sprintf("%.0f %% of a core", 100*out.ClientCPUUtil))
	}
}

// printIdle prints the table of an idle run.
func printIdle(w io.Writer, o *options, out *resultJSON, res *idleResult) {
	fmt.Fprintf(w, "supersocket bench -idle: %s → %s\n  %s connections asked, one %d-byte exchange each, then idle\n\n",
		o.proto, o.target(), group(int64(o.idle)), o.size)
	row := rowWriter(w, 18)
	row("open", group(int64(res.open)), "")
	row("errors", group(out.Errors), out.errorNote())
	switch {
	case out.RSSPerConn != nil:
		row("server RSS before", fmt.Sprintf("%.1f MiB", float64(res.rssBefore)/(1<<20)), fmt.Sprintf("pid %d, VmRSS", o.serverPID))
		row("server RSS after", fmt.Sprintf("%.1f MiB", float64(res.rssAfter)/(1<<20)), "")
		row("server RSS/conn", fmt.Sprintf("%.2f KB", *out.RSSPerConn/1e3), fmt.Sprintf("%.2f KiB", *out.RSSPerConn/1024))
	case out.ServerMemoryError != "":
		row("server RSS/conn", "?", out.ServerMemoryError)
	default:
		row("server RSS/conn", "-", "give -server-pid PID to measure")
	}
	row("client RSS/conn", fmt.Sprintf("%.2f KB", out.ClientRSSPerConn/1e3), "this process")
}

// group formats n with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
