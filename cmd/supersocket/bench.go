package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/internal/cli"
)

// benchOptions are the flags of "supersocket bench".
type benchOptions struct {
	addr       string
	proto      string
	linePrefix string
	label      string
	conns      int
	pipeline   int
	size       int
	duration   time.Duration
	warmup     time.Duration
	timeout    time.Duration
	serverPID  int
	jsonOut    bool
	progress   bool
	plot       string
	sources    string
	idle       int
	idleSettle time.Duration
	idleHold   time.Duration
	report     bool

	// Hidden, for profiling.
	cpuprofile string
	memprofile string
	serveApp   string
}

const benchUsage = `usage: supersocket bench [flags]              a load run
       supersocket bench -idle N [flags]      idle-connection memory
       supersocket bench -report FILE...      medians and ratios of -json results

Load: -conns connections each keep -pipeline requests in flight for -duration. Every
reply is checked byte for byte against its request, in order; a reply that is corrupt,
reordered, duplicated or missing counts as an error and ends its connection. The run ends
with msgs/s, MB/s, latency percentiles (p50/p99/p99.9, from a log-linear histogram with
0.8 % precision), errors and, with -server-pid, the server's CPU time per message
(utime+stime from /proc/PID/stat over the measured interval ÷ messages).

Protocols (-proto):
  line   a payload line ending "\r\n", echoed back; with -line-prefix 'ECHO ' it drives
         the commandline app (request "ECHO <payload>\r\n", reply "<payload>\r\n")
  len    a 4-byte big-endian body length, then the body; the frame is echoed back
  echo   the echo app: 5-byte little-endian header (uint16 totalSize incl. header,
         uint16 packetID, uint8 reserved), then the body; the reply has reserved = 0

Flags:
  -addr HOST:PORT        target (default 127.0.0.1:2012)
  -proto P               line, len or echo (default echo)
  -line-prefix S         text before each line's payload, e.g. 'ECHO ' (default none)
  -conns N, -c N         connections (default 64)
  -pipeline N, -p N      requests in flight per connection (default 1)
  -size BYTES, -s BYTES  payload bytes per message, framing excluded (default 64)
  -duration D, -d D      measured time (default 5s)
  -warmup D              load before the measured time, not counted (default 0)
  -timeout D             dial timeout, and how long replies may lag after the run (default 10s)
  -server-pid PID        measure this server process's CPU time (load) or memory (idle)
  -label NAME            names the server in the output and -json (e.g. supersocket, net, gnet)
  -json                  print one JSON object instead of the table
  -plot FILE             write the latency distribution as an SVG plot
  -progress              show the live progress line even when stderr is not a terminal
  -source-addrs LIST     local addresses to dial from, comma-separated; "auto" (default)
                         rotates 127.0.0.1, 127.0.0.2, ... when one address would run out
                         of ephemeral ports (more than 20000 connections to 127.x)

Idle memory (-idle N): opens N connections, makes one exchange on each, waits
-idle-settle (default 1s), and reports the server's resident memory per connection:
(VmRSS after - VmRSS before) / N, from /proc/PID/status (needs -server-pid). The
open-file limit is raised to its hard limit; each side needs N descriptors.
  -idle N                connections to hold
  -idle-settle D         wait before measuring (default 1s)
  -idle-hold D           keep the connections open this long after measuring (default 0)

Report (-report FILE...): reads -json results (one per line; "-" is stdin) and prints,
per cell, the median of each figure over the runs, with ratios between the servers
labelled supersocket, net and gnet.
`

func newBenchFlagSet(o *benchOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("supersocket bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage) }
	fs.StringVar(&o.addr, "addr", "127.0.0.1:2012", "")
	fs.StringVar(&o.proto, "proto", protoEcho, "")
	fs.StringVar(&o.linePrefix, "line-prefix", "", "")
	fs.StringVar(&o.label, "label", "", "")
	for _, name := range []string{"conns", "c"} {
		fs.IntVar(&o.conns, name, 64, "")
	}
	for _, name := range []string{"pipeline", "p"} {
		fs.IntVar(&o.pipeline, name, 1, "")
	}
	for _, name := range []string{"size", "s"} {
		fs.IntVar(&o.size, name, 64, "")
	}
	for _, name := range []string{"duration", "d"} {
		fs.DurationVar(&o.duration, name, 5*time.Second, "")
	}
	fs.DurationVar(&o.warmup, "warmup", 0, "")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "")
	fs.IntVar(&o.serverPID, "server-pid", 0, "")
	fs.BoolVar(&o.jsonOut, "json", false, "")
	fs.BoolVar(&o.progress, "progress", false, "")
	fs.StringVar(&o.plot, "plot", "", "")
	fs.StringVar(&o.sources, "source-addrs", "auto", "")
	fs.IntVar(&o.idle, "idle", 0, "")
	fs.DurationVar(&o.idleSettle, "idle-settle", time.Second, "")
	fs.DurationVar(&o.idleHold, "idle-hold", 0, "")
	fs.BoolVar(&o.report, "report", false, "")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "")
	fs.StringVar(&o.memprofile, "memprofile", "", "")
	fs.StringVar(&o.serveApp, "serve", "", "")
	return fs
}

// bench is the "bench" command; results go to standard output.
func bench(ctx context.Context, args []string, stderr io.Writer) int {
	return benchMain(ctx, args, os.Stdout, stderr)
}

func benchMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o benchOptions
	fs := newBenchFlagSet(&o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cli.ExitOK
		}
		return cli.ExitUsage
	}
	if o.report {
		return benchReport(fs.Args(), stdout, stderr)
	}
	if fs.NArg() > 0 {
		return benchUsageError(stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if o.serveApp != "" {
		return benchServe(ctx, &o, stderr)
	}
	if err := o.validate(); err != nil {
		return benchUsageError(stderr, err)
	}
	cd, err := newCodec(o.proto, o.linePrefix, o.size)
	if err != nil {
		return benchUsageError(stderr, err)
	}
	stopProfile, err := startCPUProfile(o.cpuprofile)
	if err != nil {
		return benchUsageError(stderr, err)
	}
	defer stopProfile()
	// The first SIGINT or SIGTERM ends the run early, with its results; a second one
	// stops at once.
	ctx, again, release := cli.Signalled(ctx)
	defer release()
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		select {
		case <-again:
			fmt.Fprintln(stderr, "supersocket bench: second signal: stopping now")
			os.Exit(cli.ExitError)
		case <-returned:
		}
	}()
	if o.idle > 0 {
		return benchIdle(ctx, &o, cd, stdout, stderr)
	}
	res, err := runLoad(ctx, &o, cd, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "supersocket bench: %v\n", err)
		return cli.ExitError
	}
	out := loadJSON(&o, cd, res)
	if o.plot != "" {
		title := fmt.Sprintf("%s %s: %d conns × pipeline %d, %d B", o.label, o.proto, o.conns, o.pipeline, o.size)
		if err := writePlotFile(o.plot, strings.TrimSpace(title), res.hist); err != nil {
			fmt.Fprintf(stderr, "supersocket bench: -plot: %v\n", err)
			return cli.ExitError
		}
	}
	if o.jsonOut {
		writeJSON(stdout, out)
	} else {
		printLoad(stdout, &o, cd, out, res)
	}
	if out.Errors > 0 {
		return cli.ExitError
	}
	return cli.ExitOK
}

func (o *benchOptions) validate() error {
	switch {
	case o.conns < 1:
		return fmt.Errorf("-conns: %d: at least 1", o.conns)
	case o.pipeline < 1:
		return fmt.Errorf("-pipeline: %d: at least 1", o.pipeline)
	case o.duration <= 0:
		return fmt.Errorf("-duration: %v: must be positive", o.duration)
	case o.warmup < 0:
		return fmt.Errorf("-warmup: %v: must not be negative", o.warmup)
	case o.timeout <= 0:
		return fmt.Errorf("-timeout: %v: must be positive", o.timeout)
	case o.idle < 0:
		return fmt.Errorf("-idle: %d: must not be negative", o.idle)
	case o.serverPID < 0:
		return fmt.Errorf("-server-pid: %d: not a process id", o.serverPID)
	}
	if o.serverPID > 0 {
		if _, err := procCPU(o.serverPID); err != nil {
			return fmt.Errorf("-server-pid: %w", err)
		}
	}
	if o.idle > 0 && o.plot != "" {
		return errors.New("-plot: no latencies in -idle mode")
	}
	return nil
}

func benchUsageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "supersocket bench: %v\n", err)
	return cli.ExitUsage
}

// benchJSON is one result, as -json prints it and -report reads it.
type benchJSON struct {
	Mode       string `json:"mode"` // "load" or "idle"
	Label      string `json:"label,omitempty"`
	Proto      string `json:"proto"`
	LinePrefix string `json:"line_prefix,omitempty"`
	Addr       string `json:"addr"`
	Conns      int    `json:"conns"`
	Pipeline   int    `json:"pipeline,omitempty"`
	Size       int    `json:"size"`
	Time       string `json:"time"`

	// Load.
	Seconds            float64      `json:"seconds,omitempty"`
	Msgs               int64        `json:"msgs,omitempty"`
	MsgsPerSec         float64      `json:"msgs_per_sec,omitempty"`
	MBPerSec           float64      `json:"mb_per_sec,omitempty"`
	LatencyUS          *latencyJSON `json:"latency_us,omitempty"`
	ClientCPUNsPerMsg  float64      `json:"client_cpu_ns_per_msg,omitempty"`
	ClientCPUUtil      float64      `json:"client_cpu_util,omitempty"`
	ServerPID          int          `json:"server_pid,omitempty"`
	ServerCPUSec       *float64     `json:"server_cpu_sec,omitempty"`
	ServerCPUNsPerMsg  *float64     `json:"server_cpu_ns_per_msg,omitempty"`
	ServerCPUUtil      *float64     `json:"server_cpu_util,omitempty"`
	ServerCPUError     string       `json:"server_cpu_error,omitempty"`
	ServerReadsPerMsg  *float64     `json:"server_reads_per_msg,omitempty"`  // read system calls (/proc/PID/io syscr) ÷ messages
	ServerWritesPerMsg *float64     `json:"server_writes_per_msg,omitempty"` // write system calls (syscw) ÷ messages

	// Idle.
	OpenConns         int      `json:"open_conns,omitempty"`
	RSSBefore         int64    `json:"rss_before_bytes,omitempty"`
	RSSAfter          int64    `json:"rss_after_bytes,omitempty"`
	RSSPerConn        *float64 `json:"rss_per_conn_bytes,omitempty"`
	ClientRSSPerConn  float64  `json:"client_rss_per_conn_bytes,omitempty"`
	ServerMemoryError string   `json:"server_memory_error,omitempty"`

	Errors      int64            `json:"errors"`
	ErrorKinds  map[string]int64 `json:"error_kinds,omitempty"`
	ErrorSample string           `json:"error_sample,omitempty"`
}

// latencyJSON holds latencies in microseconds.
type latencyJSON struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func ptr(f float64) *float64 { return &f }

func loadJSON(o *benchOptions, cd *codec, res *loadResult) *benchJSON {
	secs := res.elapsed.Seconds()
	h := res.hist
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	out := &benchJSON{
		Mode: "load", Label: o.label, Proto: o.proto, LinePrefix: o.linePrefix, Addr: o.addr,
		Conns: o.conns, Pipeline: o.pipeline, Size: o.size, Time: time.Now().UTC().Format(time.RFC3339),
		Seconds: secs, Msgs: res.msgs,
		LatencyUS: &latencyJSON{
			P50: us(h.percentile(50)), P90: us(h.percentile(90)), P99: us(h.percentile(99)),
			P999: us(h.percentile(99.9)), Max: us(h.max), Mean: h.mean() / 1e3,
		},
		Errors: res.errs.total(), ErrorKinds: res.errs.kinds, ErrorSample: res.errs.summary(),
	}
	if secs > 0 {
		out.MsgsPerSec = float64(res.msgs) / secs
		out.MBPerSec = float64(res.msgs) * float64(cd.repLen) / secs / 1e6
		out.ClientCPUUtil = res.clientCPU.Seconds() / secs
	}
	if res.msgs > 0 {
		out.ClientCPUNsPerMsg = float64(res.clientCPU.Nanoseconds()) / float64(res.msgs)
	}
	if o.serverPID > 0 {
		out.ServerPID = o.serverPID
		if res.serverErr != nil {
			out.ServerCPUError = res.serverErr.Error()
		} else if res.serverCPU >= 0 {
			out.ServerCPUSec = ptr(res.serverCPU.Seconds())
			if res.msgs > 0 {
				out.ServerCPUNsPerMsg = ptr(float64(res.serverCPU.Nanoseconds()) / float64(res.msgs))
			}
			if secs > 0 {
				out.ServerCPUUtil = ptr(res.serverCPU.Seconds() / secs)
			}
		}
		if res.serverIO != nil && res.msgs > 0 {
			out.ServerReadsPerMsg = ptr(float64(res.serverIO.reads) / float64(res.msgs))
			out.ServerWritesPerMsg = ptr(float64(res.serverIO.writes) / float64(res.msgs))
		}
	}
	return out
}

func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain values
	}
	fmt.Fprintf(w, "%s\n", b)
}

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

func printLoad(w io.Writer, o *benchOptions, cd *codec, out *benchJSON, res *loadResult) {
	name := o.proto
	if o.linePrefix != "" {
		name += fmt.Sprintf(" (prefix %q)", o.linePrefix)
	}
	who := o.addr
	if o.label != "" {
		who = o.label + " at " + o.addr
	}
	fmt.Fprintf(w, "supersocket bench: %s → %s\n", name, who)
	fmt.Fprintf(w, "  %d connections × pipeline %d, %d-byte messages (%d-byte requests, %d-byte replies), %.2f s measured\n\n",
		o.conns, o.pipeline, o.size, cd.reqLen, cd.repLen, out.Seconds)
	row := func(k, v, note string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-16s %14s   %s", k, v, note), " "))
	}
	row("msgs", group(out.Msgs), "every reply checked byte for byte, in order")
	row("msgs/s", group(int64(out.MsgsPerSec)), "")
	row("MB/s", fmt.Sprintf("%.1f", out.MBPerSec), "reply bytes, one direction")
	h := res.hist
	row("latency p50", fmtDur(float64(h.percentile(50))), "")
	row("latency p99", fmtDur(float64(h.percentile(99))), "")
	row("latency p99.9", fmtDur(float64(h.percentile(99.9))), "")
	row("latency max", fmtDur(out.LatencyUS.Max*1e3), fmt.Sprintf("mean %s", fmtDur(out.LatencyUS.Mean*1e3)))
	note := ""
	if out.Errors > 0 {
		note = out.ErrorSample
	}
	row("errors", group(out.Errors), note)
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

func benchIdle(ctx context.Context, o *benchOptions, cd *codec, stdout, stderr io.Writer) int {
	res, err := runIdle(ctx, o, cd, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "supersocket bench: %v\n", err)
		return cli.ExitError
	}
	out := &benchJSON{
		Mode: "idle", Label: o.label, Proto: o.proto, LinePrefix: o.linePrefix, Addr: o.addr,
		Conns: o.idle, Size: o.size, Time: time.Now().UTC().Format(time.RFC3339),
		OpenConns: res.open, ServerPID: o.serverPID,
		Errors: res.errs.total(), ErrorKinds: res.errs.kinds, ErrorSample: res.errs.summary(),
	}
	if res.open > 0 {
		out.ClientRSSPerConn = float64(res.selfAfter-res.selfBefore) / float64(res.open)
	}
	if o.serverPID > 0 {
		if res.serverErr != nil {
			out.ServerMemoryError = res.serverErr.Error()
		} else {
			out.RSSBefore, out.RSSAfter = res.rssBefore, res.rssAfter
			if res.open > 0 {
				out.RSSPerConn = ptr(float64(res.rssAfter-res.rssBefore) / float64(res.open))
			}
		}
	}
	if o.jsonOut {
		writeJSON(stdout, out)
	} else {
		who := o.addr
		if o.label != "" {
			who = o.label + " at " + o.addr
		}
		fmt.Fprintf(stdout, "supersocket bench -idle: %s → %s\n  %s connections asked, one %d-byte exchange each, then idle\n\n",
			o.proto, who, group(int64(o.idle)), o.size)
		row := func(k, v, note string) {
			fmt.Fprintln(stdout, strings.TrimRight(fmt.Sprintf("  %-18s %14s   %s", k, v, note), " "))
		}
		row("open", group(int64(res.open)), "")
		note := ""
		if out.Errors > 0 {
			note = out.ErrorSample
		}
		row("errors", group(out.Errors), note)
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
	if o.memprofile != "" {
		if err := writeHeapProfile(o.memprofile); err != nil {
			fmt.Fprintf(stderr, "supersocket bench: -memprofile: %v\n", err)
		}
	}
	if out.Errors > 0 || res.open == 0 {
		return cli.ExitError
	}
	return cli.ExitOK
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startCPUProfile writes a CPU profile to path (-cpuprofile) until stop is called; an
// empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
