package soak

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/internal/testcert"
)

// runner is one soak run.
type runner struct {
	o              options
	stdout, stderr io.Writer
	csv            io.Writer
	log            *slog.Logger

	line, udp          apps.Server
	stopped            bool // the servers were shut down
	lineAddr, tlsAddr  string
	wsAddr             string
	udpAddr            string
	clientTLS          *tls.Config
	broadcast          func(b []byte) int
	idleReaders        sync.WaitGroup
	start              time.Time
	samples            []sample
	requests           atomic.Int64 // replies checked and right, every kind
	lineReqs, udpReqs  atomic.Int64
	churnReqs, cycles  atomic.Int64
	pushes, broadcasts atomic.Int64
	udpLost            atomic.Int64 // UDP round trips with no reply in 2s (UDP may drop)
	badSent, badClosed atomic.Int64
	errs               clientErrors
}

// run starts the servers and the load, samples every -interval until the load ends,
// drains, stops the servers and prints the summary; it returns the exit status.
func (r *runner) run(ctx context.Context) int {
	if err := r.startServers(); err != nil {
		fmt.Fprintf(r.stderr, "supersocket soak: %v\n", err)
		return cli.ExitError
	}
	defer r.stopServers()
	r.start = time.Now()
	fmt.Fprintf(r.stdout, "soak: %v of mixed load on %s (commandline), %s (commandline over TLS), %s (commandline over WebSocket), %s (echo over UDP); a sample every %v\n",
		r.o.duration, r.lineAddr, r.tlsAddr, r.wsAddr, r.udpAddr, r.o.interval)
	fmt.Fprintf(r.stdout, "load: %d pipelined connections × %d in flight, %d round trips/s with %d UDP clients; %d churn cycles/s; %d idle sessions; a broadcast every %v; bad input every %v\n\n",
		r.o.conns, r.o.pipeline, r.o.rate, r.o.udp, r.o.churnRate, r.o.idle, r.o.broadcastEvery, r.o.badEvery)
	if r.csv != nil {
		fmt.Fprintln(r.csv, "seconds,phase,rss_kb,goroutines,fds,heap_inuse_kb,sessions,requests,errors")
	}
	fmt.Fprintf(r.stdout, "%9s  %-7s %10s %10s %6s %10s %8s %10s %6s\n", "seconds", "phase", "RSS KiB", "goroutines", "fds", "heap KiB", "sessions", "requests", "errors")
	startSample := r.measure("start")

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
			r.measure("load")
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
func (r *runner) startServers() error {
	serverTLS, clientTLS, err := testcert.Pair()
	if err != nil {
		return fmt.Errorf("generating a certificate: %w", err)
	}
	r.clientTLS = clientTLS
	line, err := apps.CommandLine(supersocket.Config{
		Name:   "soak-commandline",
		Engine: r.o.engine, // the plain TCP listener's; TLS and WebSocket use the goroutine engine
		Listeners: []supersocket.ListenerConfig{
			{Addr: "127.0.0.1:0"},
			{Addr: "127.0.0.1:0", TLS: &supersocket.TLSConfig{Config: serverTLS}},
			{Network: "ws", Addr: "127.0.0.1:0", WebSocket: &supersocket.WebSocketConfig{Text: true, Lines: true}},
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
	r.lineAddr, r.tlsAddr, r.wsAddr = line.Addrs()[0].String(), line.Addrs()[1].String(), line.Addrs()[2].String()
	r.udpAddr = udp.Addrs()[0].String()
	return nil
}

// stopServers shuts the servers down (once) and returns the sample taken after.
func (r *runner) stopServers() *sample {
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
	s := r.measure("stopped")
	return &s
}

// sessions is how many sessions the servers hold, 0 once they are stopped.
func (r *runner) sessions() int {
	if r.line == nil || r.stopped {
		return 0
	}
	return int(r.line.Stats().Sessions + r.udp.Stats().Sessions)
}

// drain waits, after the load, until the sessions are gone (UDP ones expire) and the
// goroutines and descriptors are back within the margins, then takes the end sample.
func (r *runner) drain(start sample) (sample, time.Duration) {
	t0 := time.Now()
	deadline := t0.Add(r.o.drain)
	for time.Now().Before(deadline) {
		if r.sessions() == 0 && runtime.NumGoroutine() <= start.goroutines+r.o.marginGoroutines && openFDs() <= start.fds+r.o.marginFDs {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r.measure("end"), time.Since(t0)
}
