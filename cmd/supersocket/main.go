// Command supersocket runs supersocket servers.
//
//	supersocket                  the commandline app on 127.0.0.1:2012 (SuperSocket's quick start)
//	supersocket serve [flags]    one server, configured by flags (see supersocket serve -h)
//	supersocket serve -config F  every server the YAML file F declares (examples/servers.yaml)
//	supersocket bench [flags]    the load generator (internal/loadgen; see supersocket bench -h)
//	supersocket soak [flags]     the soak run (internal/soak; see supersocket soak -h)
//
// The server runs until SIGINT or SIGTERM, then drains (each session closed once nothing
// is pending for it, the rest after -drain-timeout) and exits 0; a second signal stops it
// at once. SIGUSR2 hands the listening sockets to a new process of the same executable and
// arguments, and drains once that one serves (docs/deploying.md); SIGHUP reloads TLS
// certificates. Invalid flags print a message naming the problem and exit 2 with nothing
// started.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/internal/loadgen"
	"github.com/supersocket-go/supersocket/internal/soak"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

// run is the whole command: args without the program name; logs and messages go to
// stderr, the results of bench and soak to standard output. It returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) == 0 {
		return serve(ctx, nil, stderr)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "bench":
		return loadgen.Main(ctx, args[1:], os.Stdout, stderr)
	case "soak":
		return soak.Main(ctx, args[1:], os.Stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stderr)
		return cli.ExitOK
	default:
		fmt.Fprintf(stderr, "supersocket: unknown command %q\n\n", args[0])
		usage(stderr)
		return cli.ExitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  supersocket                 serve the commandline app on 127.0.0.1:2012
  supersocket serve [flags]   serve one app; "supersocket serve -h" lists the flags
  supersocket serve -config FILE
                              serve every server a YAML file declares (examples/servers.yaml)
  supersocket bench [flags]   load-test an echo server; "supersocket bench -h" lists the flags
  supersocket soak [flags]    mixed load against in-process servers, sampling RSS, goroutines and fds; "supersocket soak -h"
  supersocket help            this text
`)
}

// reloadOnHangup reloads the server's TLS certificates on every SIGHUP, until the returned
// function is called.
func reloadOnHangup(srv interface{ ReloadTLS() error }, log interface {
	Error(string, ...any)
}) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := srv.ReloadTLS(); err != nil {
					log.Error("tls reload failed; keeping the current certificates", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}
