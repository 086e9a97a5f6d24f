// Package soak is "supersocket soak": mixed load against in-process servers for a while,
// sampling the process's memory, goroutines and file descriptors, to show that nothing
// leaks. soak.go holds the command and its flags, run.go the run and its servers, load.go,
// udp.go and badinput.go the clients, sample.go the samples, summary.go the verdict.
package soak

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/supersocket-go/supersocket/internal/cli"
)

const usage = `usage: supersocket soak [flags]

Runs mixed load against in-process servers for -duration, all on 127.0.0.1: the
commandline app over TCP, over TLS (a certificate generated at start) and over WebSocket,
and the echo app over UDP. The load mixes pipelined clients (ECHO, ADD and MULT, every
reply checked; a third each over TCP, TLS and WebSocket), connect/disconnect churn (the
same thirds, some ending with QUIT), a broadcast to every session, idle sessions, UDP
clients, and bad input that the servers must cut off (a line over the limit, plaintext to
the TLS port, an RST in the middle of a line, a malformed UDP packet, an unmasked
WebSocket frame).

Every -interval it samples the process's RSS (/proc/self/status VmRSS), goroutines, open
file descriptors (/proc/self/fd) and HeapInuse, and prints a row (and a CSV row with
-csv). When the load stops it waits for the sessions to drain, samples again, and prints
start / end / max. It exits 1 if the goroutines or file descriptors at the end exceed
those at the start by more than the margins, or if any client saw an error.

Flags:
`

// options are the flags of "supersocket soak".
type options struct {
	duration, interval time.Duration
	csv                string
	rate               int
	conns, pipeline    int
	churnRate          int
	idle               int
	udp                int
	broadcastEvery     time.Duration
	badEvery           time.Duration
	marginGoroutines   int
	marginFDs          int
	drain              time.Duration
	maxErrors          int64
	logLevel           string
	engine             string
}

// newFlagSet defines the flags of "supersocket soak" into o; -h prints the usage to
// stderr.
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("supersocket soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.duration, "duration", time.Minute, "how long the load runs")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "time between samples")
	fs.StringVar(&o.csv, "csv", "", "also write the samples to this CSV `file`")
	fs.IntVar(&o.rate, "rate", 1000, "round trips per second of the pipelined and UDP clients together; 0 = as fast as they go")
	fs.IntVar(&o.conns, "conns", 8, "pipelined client connections (a third each over TCP, TLS and WebSocket)")
	fs.IntVar(&o.pipeline, "pipeline", 4, "requests in flight per pipelined connection")
	fs.IntVar(&o.churnRate, "churn-rate", 40, "connect / few requests / disconnect cycles per second")
	fs.IntVar(&o.idle, "idle", 100, "idle sessions held for the whole run (they only receive broadcasts)")
	fs.IntVar(&o.udp, "udp", 2, "UDP echo clients")
	fs.DurationVar(&o.broadcastEvery, "broadcast-every", time.Second, "time between broadcasts to every commandline session")
	fs.DurationVar(&o.badEvery, "bad-every", 100*time.Millisecond, "time between bad-input clients")
	fs.IntVar(&o.marginGoroutines, "margin-goroutines", 10, "goroutines the end may have over the start")
	fs.IntVar(&o.marginFDs, "margin-fds", 5, "file descriptors the end may have over the start")
	fs.DurationVar(&o.drain, "drain", 30*time.Second, "how long to wait, after the load, for sessions and goroutines to drain")
	fs.Int64Var(&o.maxErrors, "max-errors", 0, "client errors tolerated before the run fails")
	fs.StringVar(&o.logLevel, "log-level", "warn", "servers' log level: debug, info, warn or error")
	fs.StringVar(&o.engine, "engine", "", "the servers' Config.Engine for their TCP listener: goroutine or epoll (default: $SUPERSOCKET_ENGINE, else goroutine)")
	return fs
}

// validate checks the flags' values against each other; its error names the flag at
// fault.
func (o *options) validate() error {
	switch {
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.interval <= 0:
		return errors.New("-interval must be positive")
	case o.rate < 0:
		return errors.New("-rate must not be negative")
	case o.conns < 0 || o.pipeline < 1:
		return errors.New("-conns must not be negative and -pipeline must be at least 1")
	case o.churnRate < 0 || o.idle < 0 || o.udp < 0:
		return errors.New("-churn-rate, -idle and -udp must not be negative")
	case o.churnRate > 10000:
		return errors.New("-churn-rate must be at most 10000 cycles per second")
	case o.broadcastEvery <= 0 || o.badEvery <= 0:
		return errors.New("-broadcast-every and -bad-every must be positive")
	case o.marginGoroutines < 0 || o.marginFDs < 0 || o.drain <= 0:
		return errors.New("the margins must not be negative and -drain must be positive")
	}
	return nil
}

// Main is the "supersocket soak" command: args are its flags (without "soak"); the table
// and the summary go to stdout, flag errors and the servers' logs to stderr. It returns
// the exit status: cli.ExitOK when the run passed, cli.ExitError when the servers could
// not start or the run failed (goroutines or file descriptors over the margins at the
// end, sessions left open, more client errors than -max-errors, no request completed),
// cli.ExitUsage for a bad command line (nothing started). The first SIGINT or SIGTERM
// (or the end of ctx) ends the load early; the drain and the summary still follow.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlagSet(&o, stderr)
	if status, ok := cli.ParseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "supersocket soak: unexpected argument %q\n", fs.Arg(0))
		return cli.ExitUsage
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "supersocket soak: %v\n", err)
		return cli.ExitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "supersocket soak: -log-level: %q is not debug, info, warn or error\n", o.logLevel)
		return cli.ExitUsage
	}
	var csv io.Writer // nil without -csv: a nil *os.File here would be a non-nil Writer
	if o.csv != "" {
		f, err := os.Create(o.csv)
		if err != nil {
			fmt.Fprintf(stderr, "supersocket soak: -csv: %v\n", err)
			return cli.ExitUsage
		}
		defer f.Close()
		csv = f
	}
	ctx, _, release := cli.Signalled(ctx)
	defer release()
	r := &runner{o: o, stdout: stdout, stderr: stderr, csv: csv}
	r.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return r.run(ctx)
}
