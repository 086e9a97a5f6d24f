// Package loadgen is "supersocket bench", the load generator the benchmark suite
// (bench/run.sh) measures servers with: a load run that checks every reply byte for byte
// and times it (load.go, codec.go, histogram.go), the idle-connection memory run
// (idle.go), the tables, -json results and SVG plot of a run (table.go, result.go,
// plot.go), the medians and ratios of many runs (-report, report*.go), and a hidden
// in-process server to profile under load (-serve, serve.go).
package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/internal/proc"
)

// options are the flags of "supersocket bench".
type options struct {
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
	accept     bool
	report     bool
	wsPath     string

	// Hidden, for profiling.
	cpuprofile string
	memprofile string
	serveApp   string
}

const usage = `usage: supersocket bench [flags]              a load run
       supersocket bench -idle N [flags]      idle-connection memory
       supersocket bench -accept [flags]      new connections per second
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
  -ws PATH               WebSocket: upgrade each connection at PATH (e.g. /ws), then send
                         each request as one masked message (text for line, binary for len
                         and echo) and check each reply message as over TCP, in order (a
                         line reply may lack its "\r\n"); in -idle mode too. The output
                         and -json name the transport (tcp or ws)

Idle memory (-idle N): opens N connections, makes one exchange on each, waits
-idle-settle (default 1s), and reports the server's resident memory per connection:
(VmRSS after - VmRSS before) / N, from /proc/PID/status (needs -server-pid). The
open-file limit is raised to its hard limit; each side needs N descriptors.
  -idle N                connections to hold
  -idle-settle D         wait before measuring (default 1s)
  -idle-hold D           keep the connections open this long after measuring (default 0)

New connections (-accept): -conns clients each open a connection, make one exchange,
reset the connection (SO_LINGER 0: no TIME_WAIT on either side) and start over, for
-duration after -warmup. It reports connections per second, the server's CPU time per
connection (with -server-pid) and the time of a whole connection, dial to reply.

Report (-report FILE...): reads -json results (one per line; "-" is stdin) and prints,
per cell, the median of each figure over the runs, with ratios between the servers
labelled supersocket, net and gnet.
`

// newFlagSet defines the flags of "supersocket bench" into o; -h prints the usage to
// stderr.
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("supersocket bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
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
	fs.BoolVar(&o.accept, "accept", false, "")
	fs.BoolVar(&o.report, "report", false, "")
	fs.StringVar(&o.wsPath, "ws", "", "")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "")
	fs.StringVar(&o.memprofile, "memprofile", "", "")
	fs.StringVar(&o.serveApp, "serve", "", "")
	return fs
}

// Main is the "supersocket bench" command: args are its flags (without "bench"); results
// and reports go to stdout, usage, errors and the live progress line to stderr. It
// returns the exit status: cli.ExitOK, cli.ExitError when the run could not be made or
// found an error in a reply, cli.ExitUsage for a bad command line (nothing run). During
// a run the first SIGINT or SIGTERM (or the end of ctx) ends it early with its results;
// a second signal exits the process at once with cli.ExitError.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlagSet(&o, stderr)
	if status, ok := cli.ParseFlags(fs, args); !ok {
		return status
	}
	if o.report {
		return reportMain(fs.Args(), stdout, stderr)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if o.serveApp != "" {
		return serveMain(ctx, &o, stderr)
	}
	if err := o.validate(); err != nil {
		return usageError(stderr, err)
	}
	cd, err := newCodec(o.proto, o.linePrefix, o.size)
	if err != nil {
		return usageError(stderr, err)
	}
	stopProfile, err := startCPUProfile(o.cpuprofile)
	if err != nil {
		return usageError(stderr, err)
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
		return idleMain(ctx, &o, cd, stdout, stderr)
	}
	if o.accept {
		return acceptMain(ctx, &o, cd, stdout, stderr)
	}
	return loadMain(ctx, &o, cd, stdout, stderr)
}

// loadMain makes a load run and prints its results; it returns the exit status.
func loadMain(ctx context.Context, o *options, cd *codec, stdout, stderr io.Writer) int {
	res, err := runLoad(ctx, o, cd, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "supersocket bench: %v\n", err)
		return cli.ExitError
	}
	out := loadJSON(o, cd, res)
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
		printLoad(stdout, o, cd, out, res)
	}
	if out.Errors > 0 {
		return cli.ExitError
	}
	return cli.ExitOK
}

// validate checks the flags' values (a -server-pid must be a process whose CPU time is
// readable); its error names the flag at fault.
func (o *options) validate() error {
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
		if _, err := proc.CPU(o.serverPID); err != nil {
			return fmt.Errorf("-server-pid: %w", err)
		}
	}
	if o.wsPath != "" && !strings.HasPrefix(o.wsPath, "/") {
		return fmt.Errorf("-ws: %q: a path starts with /", o.wsPath)
	}
	if o.idle > 0 && o.plot != "" {
		return errors.New("-plot: no latencies in -idle mode")
	}
	if o.idle > 0 && o.accept {
		return errors.New("-accept and -idle: one mode at a time")
	}
	return nil
}

// usageError reports a bad command line and returns cli.ExitUsage.
func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "supersocket bench: %v\n", err)
	return cli.ExitUsage
}
