// Package cli holds what the subcommands of the supersocket command (serve, bench, soak)
// share: their exit statuses and their handling of SIGINT and SIGTERM.
package cli

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses of every subcommand.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed: a server could not start or stop cleanly, a run found errors
	ExitUsage = 2 // bad command line or configuration: nothing was started
)

// ParseFlags parses args into fs, a flag set made with flag.ContinueOnError. When the
// command must stop there it returns ok = false and the exit status: ExitOK after -h or
// -help (fs has printed the usage), ExitUsage after a bad flag (fs has printed the
// problem and the usage).
func ParseFlags(fs *flag.FlagSet, args []string) (status int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return ExitOK, true
	case errors.Is(err, flag.ErrHelp):
		return ExitOK, false
	default:
		return ExitUsage, false
	}
}

// Signalled returns a context that ends at the first SIGINT or SIGTERM, and a channel that
// receives the second one. Until release is called those signals no longer stop the
// process by default; release stops listening for them and cancels the context.
func Signalled(parent context.Context) (ctx context.Context, again <-chan os.Signal, release func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	later := make(chan os.Signal, 1)
	released := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
			return
		}
		// ctx has ended: only release ends the wait for the second signal.
		select {
		case s := <-sigs:
			later <- s
		case <-released:
		}
	}()
	return ctx, later, func() {
		signal.Stop(sigs)
		close(released)
		cancel()
	}
}
