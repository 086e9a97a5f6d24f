package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
)

// benchServe is the hidden "-serve APP" mode of bench, for profiling a server under load:
// it serves APP on -addr with default settings (and no connection cap) until SIGINT or
// SIGTERM, with a CPU profile (-cpuprofile) over its whole life and a heap profile
// (-memprofile) taken when the signal arrives, before the sessions close.
func benchServe(ctx context.Context, o *benchOptions, stderr io.Writer) int {
	app, err := apps.Lookup(o.serveApp)
	if err != nil {
		return benchUsageError(stderr, fmt.Errorf("-serve: %w", err))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := app(supersocket.Config{
		Name:           o.serveApp,
		Listeners:      []supersocket.ListenerConfig{{Addr: o.addr}},
		MaxConnections: 1 << 20,
		Logger:         log,
	})
	if err != nil {
		return benchUsageError(stderr, fmt.Errorf("-serve: %w", err))
	}
	if _, err := raiseFileLimit(); err != nil {
		log.Warn("cannot raise the open-file limit", "err", err)
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return benchUsageError(stderr, fmt.Errorf("-cpuprofile: %w", err))
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return benchUsageError(stderr, fmt.Errorf("-cpuprofile: %w", err))
		}
		defer pprof.StopCPUProfile()
	}
	ctx, _, release := signalled(ctx)
	defer release()
	if err := srv.Start(); err != nil {
		fmt.Fprintf(stderr, "supersocket bench -serve: %v\n", err)
		return exitError
	}
	<-ctx.Done()
	if o.memprofile != "" {
		if err := writeHeapProfile(o.memprofile); err != nil {
			log.Error("heap profile not written", "err", err)
		}
	}
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(stderr, "supersocket bench -serve: %v\n", err)
		return exitError
	}
	return exitOK
}
