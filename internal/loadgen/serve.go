package loadgen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
	"github.com/supersocket-go/supersocket/internal/cli"
)

// serveMain is the hidden "-serve APP" mode of bench, for profiling a server under load:
// it serves APP on -addr (a WebSocket at -ws PATH, if set) with default settings (and no
// connection cap) until SIGINT or
// SIGTERM, with a CPU profile (-cpuprofile) over its whole life and a heap profile
// (-memprofile) taken when the signal arrives, before the sessions close; it then logs
// where the runtime's memory is (heap, goroutine stacks) and how many sessions were open.
// It returns the exit status.
func serveMain(ctx context.Context, o *options, stderr io.Writer) int {
	app, err := apps.Lookup(o.serveApp)
	if err != nil {
		return usageError(stderr, fmt.Errorf("-serve: %w", err))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	listener := supersocket.ListenerConfig{Addr: o.addr}
	if o.wsPath != "" {
		listener.Network, listener.WebSocket = "ws", &supersocket.WebSocketConfig{Path: o.wsPath}
	}
	srv, err := app(supersocket.Config{
		Name:           o.serveApp,
		Listeners:      []supersocket.ListenerConfig{listener},
		MaxConnections: 1 << 20,
		Logger:         log,
	})
	if err != nil {
		return usageError(stderr, fmt.Errorf("-serve: %w", err))
	}
	if o.memprofile != "" {
		runtime.MemProfileRate = 256 // every object of a session shows in the heap profile
	}
	if _, err := raiseFileLimit(); err != nil {
		log.Warn("cannot raise the open-file limit", "err", err)
	}
	stopProfile, err := startCPUProfile(o.cpuprofile)
	if err != nil {
		return usageError(stderr, err)
	}
	defer stopProfile()
	ctx, _, release := cli.Signalled(ctx)
	defer release()
	if err := srv.Start(); err != nil {
		fmt.Fprintf(stderr, "supersocket bench -serve: %v\n", err)
		return cli.ExitError
	}
	<-ctx.Done()
	logMemory(log, "memory at the signal", srv.Stats().Sessions)
	if o.memprofile != "" {
		// A heap profile shows the heap as of the last garbage collection: collect first.
		// The collection also shrinks goroutine stacks that use under a quarter of their
		// size, which the second log line shows.
		runtime.GC()
		if err := writeHeapProfile(o.memprofile); err != nil {
			log.Error("heap profile not written", "err", err)
		}
		logMemory(log, "memory after a forced GC", srv.Stats().Sessions)
	}
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(stderr, "supersocket bench -serve: %v\n", err)
		return cli.ExitError
	}
	return cli.ExitOK
}

// logMemory logs where the runtime's memory is, in all and per session.
func logMemory(log *slog.Logger, msg string, sessions int64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	log.Info(msg,
		"sessions", sessions, "goroutines", runtime.NumGoroutine(),
		"heap_inuse", ms.HeapInuse, "heap_objects", ms.HeapObjects, "stack_inuse", ms.StackInuse,
		"sys", ms.Sys, "heap_per_session", perSession(ms.HeapInuse, sessions),
		"stack_per_session", perSession(ms.StackInuse, sessions))
}

// perSession is bytes ÷ sessions, 0 without sessions.
func perSession(bytes uint64, sessions int64) int64 {
	if sessions <= 0 {
		return 0
	}
	return int64(bytes) / sessions
}
