package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/internal/testcert"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/apps"
)

const soakUsage = `usage: supersocket soak [flags]

Runs mixed load against in-process servers for -duration, all on 127.0.0.1: the
commandline app over TCP and over TLS (a certificate generated at start), and the echo
app over UDP. The load mixes pipelined clients (ECHO, ADD and MULT, every reply checked),
connect/disconnect churn (half of it over TLS, some ending with QUIT), a broadcast to every
session, idle sessions, UDP clients, and bad input that the servers must cut off (a line
over the limit, plaintext to the TLS port, an RST in the middle of a line, a malformed UDP
packet).

Every -interval it samples the process's RSS (/proc/self/status VmRSS), goroutines, open
file descriptors (/proc/self/fd) and HeapInuse, and prints a row (and a CSV row with
-csv). When the load stops it waits for the sessions to drain, samples again, and prints
start / end / max. It exits 1 if the goroutines or file descriptors at the end exceed
those at the start by more than the margins, or if any client saw an error.

Flags:
`

// soakOptions are the flags of "supersocket soak".
type soakOptions struct {
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
}

func newSoakFlagSet(o *soakOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("supersocket soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, soakUsage)
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.duration, "duration", time.Minute, "how long the load runs")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "time between samples")
	fs.StringVar(&o.csv, "csv", "", "also write the samples to this CSV `file`")
	fs.IntVar(&o.rate, "rate", 1000, "round trips per second of the pipelined and UDP clients together; 0 = as fast as they go")
	fs.IntVar(&o.conns, "conns", 8, "pipelined client connections (half of them over TLS)")
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
	return fs
}

func (o *soakOptions) validate() error {
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

// soak is the "soak" command: the table goes to stdout, messages to stderr.
func soak(ctx context.Context, args []string, stderr io.Writer) int {
	return soakMain(ctx, args, os.Stdout, stderr)
}

func soakMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o soakOptions
	fs := newSoakFlagSet(&o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cli.ExitOK
		}
		return cli.ExitUsage
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
	var csvFile *os.File
	if o.csv != "" {
		f, err := os.Create(o.csv)
		if err != nil {
			fmt.Fprintf(stderr, "supersocket soak: -csv: %v\n", err)
			return cli.ExitUsage
		}
		defer f.Close()
		csvFile = f
	}
	ctx, _, release := cli.Signalled(ctx)
	defer release()
	r := &soakRun{o: o, stdout: stdout, stderr: stderr, csv: csvFile}
	r.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return r.run(ctx)
}

// soakRun is one soak run.
type soakRun struct {
	o              soakOptions
	stdout, stderr io.Writer
	csv            io.Writer
	log            *slog.Logger

	line, udp          apps.Server
	stopped            bool // the servers were shut down
	lineAddr, tlsAddr  string
	udpAddr            string
	clientTLS          *tls.Config
	broadcast          func(b []byte) int
	idleReaders        sync.WaitGroup
	start              time.Time
	samples            []soakSample
	requests           atomic.Int64 // replies checked and right, every kind
	lineReqs, udpReqs  atomic.Int64
	churnReqs, cycles  atomic.Int64
	pushes, broadcasts atomic.Int64
	udpLost            atomic.Int64 // UDP round trips with no reply in 2s (UDP may drop)
	badSent, badClosed atomic.Int64
	errs               soakErrors
}

// soakSample is one row of the table.
type soakSample struct {
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

// soakErrors tallies client errors by kind, keeping the first few messages.
type soakErrors struct {
	mu       sync.Mutex
	byKind   map[string]int64
	examples []string
	total    atomic.Int64
}

func (e *soakErrors) add(kind string, err error) {
	e.total.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byKind == nil {
		e.byKind = map[string]int64{}
	}
	e.byKind[kind]++
	if len(e.examples) < 10 {
		e.examples = append(e.examples, kind+": "+err.Error())
	}
}

func (r *soakRun) run(ctx context.Context) int {
	if err := r.startServers(); err != nil {
		fmt.Fprintf(r.stderr, "supersocket soak: %v\n", err)
		return cli.ExitError
	}
	defer r.stopServers()
	r.start = time.Now()
	fmt.Fprintf(r.stdout, "soak: %v of mixed load on %s (commandline), %s (commandline over TLS), %s (echo over UDP); a sample every %v\n",
		r.o.duration, r.lineAddr, r.tlsAddr, r.udpAddr, r.o.interval)
	fmt.Fprintf(r.stdout, "load: %d pipelined connections × %d in flight, %d round trips/s with %d UDP clients; %d churn cycles/s; %d idle sessions; a broadcast every %v; bad input every %v\n\n",
		r.o.conns, r.o.pipeline, r.o.rate, r.o.udp, r.o.churnRate, r.o.idle, r.o.broadcastEvery, r.o.badEvery)
	if r.csv != nil {
		fmt.Fprintln(r.csv, "seconds,phase,rss_kb,goroutines,fds,heap_inuse_kb,sessions,requests,errors")
	}
	fmt.Fprintf(r.stdout, "%9s  %-7s %10s %10s %6s %10s %8s %10s %6s\n", "seconds", "phase", "RSS KiB", "goroutines", "fds", "heap KiB", "sessions", "requests", "errors")
	startSample := r.sample("start")

	loadCtx, stopLoad := context.WithTimeout(ctx, r.o.duration)
	defer stopLoad()
	var load sync.WaitGroup
	idle, err := r.startLoad(loadCtx, &load)
	if err != nil {
		stopLoad()
		load.Wait()
		fmt.Fprintf(r.stderr, "supersocket soak: %v\n", err)
		return cli.ExitError
	}
	tick := time.NewTicker(r.o.interval)
	for done := false; !done; {
		select {
		case <-loadCtx.Done():
			done = true
		case <-tick.C:
			r.sample("load")
		}
	}
	tick.Stop()
	stopLoad()
	load.Wait()
	for _, c := range idle {
		c.Close()
	}
	r.idleReaders.Wait()
	endSample, drained := r.drain(startSample)
	stopped := r.stopServers()

	ok := r.summary(startSample, endSample, drained, stopped)
	if !ok {
		return cli.ExitError
	}
	return cli.ExitOK
}

// startServers starts the commandline app on TCP and TLS and the echo app on UDP.
func (r *soakRun) startServers() error {
	serverTLS, clientTLS, err := soakCertificate()
	if err != nil {
		return fmt.Errorf("generating a certificate: %w", err)
	}
	r.clientTLS = clientTLS
	line, err := apps.CommandLine(supersocket.Config{
		Name: "soak-commandline",
		Listeners: []supersocket.ListenerConfig{
			{Addr: "127.0.0.1:0"},
			{Addr: "127.0.0.1:0", TLS: &supersocket.TLSConfig{Config: serverTLS}},
		},
		MaxRequestLength: 1024,
		HandshakeTimeout: 5 * time.Second,
		Logger:           r.log.With("app", "commandline"),
	})
	if err != nil {
		return err
	}
	b, ok := line.(interface {
		Broadcast(b []byte, match func(*supersocket.Session[struct{}]) bool) int
	})
	if !ok {
		return errors.New("the commandline app's server cannot broadcast")
	}
	r.broadcast = func(msg []byte) int { return b.Broadcast(msg, nil) }
	udp, err := apps.Echo(supersocket.Config{
		Name:             "soak-echo-udp",
		Mode:             "udp",
		Listeners:        []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		MaxRequestLength: 1024,
		IdleTimeout:      time.Second, // UDP sessions end only by expiring
		Logger:           r.log.With("app", "echo-udp"),
	})
	if err != nil {
		return err
	}
	if err := line.Start(); err != nil {
		return err
	}
	if err := udp.Start(); err != nil {
		line.Stop()
		return err
	}
	r.line, r.udp = line, udp
	r.lineAddr, r.tlsAddr = line.Addrs()[0].String(), line.Addrs()[1].String()
	r.udpAddr = udp.Addrs()[0].String()
	return nil
}

// stopServers shuts the servers down (once) and returns the sample taken after.
func (r *soakRun) stopServers() *soakSample {
	if r.line == nil || r.stopped {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range []apps.Server{r.line, r.udp} {
		if err := srv.Shutdown(ctx); err != nil {
			r.errs.add("shutdown", err)
		}
	}
	r.stopped = true
	s := r.sample("stopped")
	return &s
}

func (r *soakRun) sessions() int {
	if r.line == nil || r.stopped {
		return 0
	}
	return int(r.line.Stats().Sessions + r.udp.Stats().Sessions)
}

// sample measures the process, prints the row and keeps it.
func (r *soakRun) sample(phase string) soakSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := soakSample{
		phase:      phase,
		at:         time.Since(r.start),
		rssKB:      soakRSS(),
		goroutines: runtime.NumGoroutine(),
		fds:        soakFDs(),
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

// drain waits, after the load, until the sessions are gone (UDP ones expire) and the
// goroutines and descriptors are back within the margins, then takes the end sample.
func (r *soakRun) drain(start soakSample) (soakSample, time.Duration) {
	t0 := time.Now()
	deadline := t0.Add(r.o.drain)
	for time.Now().Before(deadline) {
		if r.sessions() == 0 && runtime.NumGoroutine() <= start.goroutines+r.o.marginGoroutines && soakFDs() <= start.fds+r.o.marginFDs {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r.sample("end"), time.Since(t0)
}

// startLoad starts every client; they stop when ctx ends. It returns the idle
// connections, which the caller closes after the load.
func (r *soakRun) startLoad(ctx context.Context, wg *sync.WaitGroup) ([]net.Conn, error) {
	var idle []net.Conn
	for range r.o.idle {
		c, err := net.DialTimeout("tcp", r.lineAddr, 10*time.Second)
		if err != nil {
			for _, c := range idle {
				c.Close()
			}
			return nil, fmt.Errorf("idle session: %w", err)
		}
		idle = append(idle, c)
		r.idleReaders.Go(func() { io.Copy(io.Discard, c) }) // broadcasts; ends at Close
	}
	workers := r.o.conns*r.o.pipeline + r.o.udp
	var period time.Duration // between one worker's round trips
	if r.o.rate > 0 && workers > 0 {
		period = time.Duration(float64(time.Second) * float64(workers) / float64(r.o.rate))
	}
	for i := range r.o.conns {
		wg.Go(func() { r.pipelined(ctx, i, i%2 == 1, period) })
	}
	for i := range r.o.udp {
		wg.Go(func() { r.udpClient(ctx, i, period) })
	}
	if r.o.churnRate > 0 {
		wg.Go(func() { r.churn(ctx, wg) })
	}
	wg.Go(func() { r.broadcaster(ctx) })
	wg.Go(func() { r.badInput(ctx, wg) })
	return idle, nil
}

// pace waits for the next tick, or returns false when ctx ends.
func pace(ctx context.Context, tick *time.Ticker) bool {
	if tick == nil {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-tick.C:
		return true
	}
}

func newPacer(period time.Duration) *time.Ticker {
	if period <= 0 {
		return nil
	}
	return time.NewTicker(period)
}

func (r *soakRun) lineConfig(useTLS bool) client.Config {
	cfg := client.Config{
		Addr:        r.lineAddr,
		Filter:      filter.CommandLine(),
		IsPush:      func(m client.Message) bool { return m.Key == "NEWS" },
		OnMessage:   func(client.Message) { r.pushes.Add(1) },
		DialTimeout: 10 * time.Second,
		Logger:      r.log,
	}
	if useTLS {
		cfg.Addr, cfg.TLS = r.tlsAddr, r.clientTLS
	}
	return cfg
}

// lineRequest makes one random commandline request on c and checks the reply.
func lineRequest(ctx context.Context, c *client.Conn, rng *mrand.Rand) error {
	var req, want string
	switch a, b := rng.Int64N(1e6), rng.Int64N(1e6); rng.IntN(3) {
	case 0:
		w := strconv.FormatUint(rng.Uint64(), 36)
		req, want = "ECHO "+w, w
	case 1:
		req, want = fmt.Sprintf("ADD %d %d", a, b), strconv.FormatInt(a+b, 10)
	default:
		req, want = fmt.Sprintf("MULT %d %d", a, b), strconv.FormatInt(a*b, 10)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := c.Request(ctx, []byte(req+"\r\n"))
	if err != nil {
		return err
	}
	if got := strings.TrimRight(string(m.Frame), "\r\n"); got != want {
		return fmt.Errorf("%s answered %q, want %q", req, got, want)
	}
	return nil
}

// pipelined keeps one connection with -pipeline requests in flight until ctx ends,
// redialling if it is lost.
func (r *soakRun) pipelined(ctx context.Context, id int, useTLS bool, period time.Duration) {
	for ctx.Err() == nil {
		c, err := client.Dial(ctx, r.lineConfig(useTLS))
		if err != nil {
			if ctx.Err() == nil {
				r.errs.add("pipelined dial", err)
			}
			return
		}
		var wg sync.WaitGroup
		for k := range r.o.pipeline {
			wg.Go(func() {
				tick := newPacer(period)
				if tick != nil {
					defer tick.Stop()
				}
				rng := mrand.New(mrand.NewPCG(uint64(id), uint64(k)))
				for pace(ctx, tick) {
					if err := lineRequest(ctx, c, rng); err != nil {
						if ctx.Err() == nil {
							r.errs.add("pipelined request", err)
						}
						return
					}
					r.requests.Add(1)
					r.lineReqs.Add(1)
				}
			})
		}
		wg.Wait()
		c.Close()
	}
}

// churn connects, makes a few requests and disconnects (by QUIT, or by closing), at
// -churn-rate cycles per second, half over TLS.
func (r *soakRun) churn(ctx context.Context, wg *sync.WaitGroup) {
	tick := time.NewTicker(time.Second / time.Duration(r.o.churnRate))
	defer tick.Stop()
	var n int
	for pace(ctx, tick) {
		n++
		seq := n
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(seq), 99))
			c, err := client.Dial(ctx, r.lineConfig(seq%2 == 0))
			if err != nil {
				if ctx.Err() == nil {
					r.errs.add("churn dial", err)
				}
				return
			}
			defer c.Close()
			for range 1 + rng.IntN(5) {
				if err := lineRequest(ctx, c, rng); err != nil {
					if ctx.Err() == nil {
						r.errs.add("churn request", err)
					}
					return
				}
				r.requests.Add(1)
				r.churnReqs.Add(1)
			}
			if seq%3 == 0 {
				qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				m, err := c.Request(qctx, []byte("QUIT\r\n"))
				if err == nil && string(m.Frame) != "BYE\r\n" {
					err = fmt.Errorf("QUIT answered %q", m.Frame)
				}
				if err != nil && ctx.Err() == nil {
					r.errs.add("churn quit", err)
					return
				}
			}
			r.cycles.Add(1)
		})
	}
}

// echoPacketUDP builds an echo-app packet.
func echoPacketUDP(id uint16, body []byte) []byte {
	p := binary.LittleEndian.AppendUint16(nil, uint16(apps.EchoHeaderSize+len(body)))
	p = binary.LittleEndian.AppendUint16(p, id)
	return append(append(p, 0), body...)
}

// udpClient makes echo round trips over UDP, matched by packet id, and moves to a new
// socket (a new session) every 500 round trips; the old session expires.
func (r *soakRun) udpClient(ctx context.Context, id int, period time.Duration) {
	tick := newPacer(period)
	if tick != nil {
		defer tick.Stop()
	}
	rng := mrand.New(mrand.NewPCG(uint64(id), 7))
	var c *client.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var pid uint16
	for n := 0; pace(ctx, tick); n++ {
		if c == nil || n%500 == 0 {
			if c != nil {
				c.Close()
			}
			var err error
			c, err = client.Dial(ctx, client.Config{
				Network: "udp",
				Addr:    r.udpAddr,
				Filter:  apps.EchoFilter(),
				ReplyID: func(m client.Message) (uint64, bool) {
					return uint64(binary.LittleEndian.Uint16(m.Header[2:4])), true
				},
				Logger: r.log,
			})
			if err != nil {
				c = nil
				if ctx.Err() == nil {
					r.errs.add("udp dial", err)
				}
				return
			}
		}
		pid++
		body := strconv.AppendUint(nil, rng.Uint64(), 36)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := c.RequestID(rctx, uint64(pid), echoPacketUDP(pid, body))
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			r.udpLost.Add(1)
		case err != nil:
			r.errs.add("udp request", err)
			return
		case !bytes.Equal(m.Body, body):
			r.errs.add("udp request", fmt.Errorf("echo of %q came back as %q", body, m.Body))
		default:
			r.requests.Add(1)
			r.udpReqs.Add(1)
		}
	}
}

// broadcaster sends a NEWS line to every commandline session every -broadcast-every.
func (r *soakRun) broadcaster(ctx context.Context) {
	tick := time.NewTicker(r.o.broadcastEvery)
	defer tick.Stop()
	for n := 0; pace(ctx, tick); n++ {
		r.broadcasts.Add(int64(r.broadcast(fmt.Appendf(nil, "NEWS %d\r\n", n))))
	}
}

// badInput sends, every -bad-every, one kind of input the servers must cut off, and
// checks that they do.
func (r *soakRun) badInput(ctx context.Context, wg *sync.WaitGroup) {
	tick := time.NewTicker(r.o.badEvery)
	defer tick.Stop()
	long := append(bytes.Repeat([]byte("x"), 2048), '\r', '\n') // over MaxRequestLength 1024
	for n := 0; pace(ctx, tick); n++ {
		kind := n % 4
		wg.Go(func() {
			r.badSent.Add(1)
			var err error
			switch kind {
			case 0: // a line over the limit: closed (ProtocolError)
				err = expectCut(r.lineAddr, long, "")
			case 1: // plaintext to the TLS port: no session (handshake failure)
				err = expectCut(r.tlsAddr, []byte("ECHO plaintext\r\n"), "plaintext")
			case 2: // an RST in the middle of a line
				var c net.Conn
				if c, err = net.DialTimeout("tcp", r.lineAddr, 10*time.Second); err == nil {
					c.Write([]byte("ECHO half a li"))
					c.(*net.TCPConn).SetLinger(0)
					err = c.Close()
				}
			case 3: // a UDP packet whose totalSize is below the header: ProtocolError
				var c net.Conn
				if c, err = net.Dial("udp", r.udpAddr); err == nil {
					_, err = c.Write([]byte{2, 0, 1, 0, 0})
					c.Close()
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					r.errs.add("bad input", err)
				}
				return
			}
			r.badClosed.Add(1)
		})
	}
}

// expectCut sends b to addr and expects the server to close the connection without
// sending anything that contains mustNot (or anything at all, when mustNot is empty).
func expectCut(addr string, b []byte, mustNot string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: the server did not cut off %q", addr, b[:min(len(b), 16)])
	}
	if mustNot == "" && len(got) > 0 || mustNot != "" && bytes.Contains(got, []byte(mustNot)) {
		return fmt.Errorf("%s: the server answered %q to bad input", addr, got)
	}
	return nil // EOF or a reset: cut off
}

// summary prints start / end / max and the totals; it reports whether the run passed.
func (r *soakRun) summary(start, end soakSample, drained time.Duration, stopped *soakSample) bool {
	w := r.stdout
	fmt.Fprintf(w, "\nsummary (end = after the load stopped and %v of draining, servers still running):\n", drained.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tstart\tend\tmax\tend-start\t")
	maxOf := func(f func(soakSample) int64) int64 {
		var m int64
		for _, s := range r.samples {
			m = max(m, f(s))
		}
		return m
	}
	rows := []struct {
		name string
		f    func(soakSample) int64
	}{
		{"RSS KiB", func(s soakSample) int64 { return s.rssKB }},
		{"goroutines", func(s soakSample) int64 { return int64(s.goroutines) }},
		{"fds", func(s soakSample) int64 { return int64(s.fds) }},
		{"heap KiB", func(s soakSample) int64 { return int64(s.heapKB) }},
		{"sessions", func(s soakSample) int64 { return int64(s.sessions) }},
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

// soakRSS returns the process's resident set size in KiB (VmRSS), or -1.
func soakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// soakFDs counts the process's open file descriptors, or -1.
func soakFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// soakCertificate makes a throwaway certificate for 127.0.0.1 and returns the server's TLS
// configuration and a client's that trusts it.
func soakCertificate() (server, client *tls.Config, err error) {
	return testcert.Pair()
}
