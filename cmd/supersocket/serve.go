package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
)

// serveFlags are the flags of "serve": Config's fields in kebab-case.
type serveFlags struct {
	app       string
	addr      string
	logLevel  string
	tlsCert   string
	tlsKey    string
	tlsCA     string
	tlsClient string
	cfg       supersocket.Config
}

func newServeFlagSet(f *serveFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("supersocket serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &f.cfg
	fs.StringVar(&f.app, "app", "commandline", "app to serve: "+strings.Join(apps.Names(), ", "))
	fs.StringVar(&f.addr, "addr", "127.0.0.1:2012", "address(es) to listen on, host:port, comma-separated")
	fs.StringVar(&c.Mode, "mode", "tcp", "transport: tcp or udp (udp: one request per datagram, replies to the sender)")
	fs.StringVar(&c.Name, "name", "", "server name in logs (default: the app's name)")
	fs.IntVar(&c.MaxConnections, "max-connections", supersocket.DefaultMaxConnections, "most live sessions; more are refused at accept")
	fs.IntVar(&c.MaxRequestLength, "max-request-length", supersocket.DefaultMaxRequestLength, "largest request in `bytes`; longer closes the session (ProtocolError)")
	fs.IntVar(&c.ReceiveBufferSize, "receive-buffer-size", supersocket.DefaultReceiveBufferSize, "pooled read buffer in `bytes`")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 0, "close sessions idle this long (TimeOut); 0 = off")
	fs.DurationVar(&c.IdleCheckInterval, "idle-check-interval", 0, "how often idleness is checked (default: idle-timeout/4, 10ms..1s)")
	fs.IntVar(&c.SendQueueSize, "send-queue-size", supersocket.DefaultSendQueueSize, "send queue bound in messages per session")
	fs.IntVar(&c.SendQueueBytes, "send-queue-bytes", supersocket.DefaultSendQueueBytes, "send queue bound in `bytes` per session")
	fs.DurationVar(&c.SendTimeout, "send-timeout", supersocket.DefaultSendTimeout, "how long Send waits on a full queue; negative = no wait")
	fs.BoolVar(&c.CloseOnSendTimeout, "close-on-send-timeout", false, "close a session whose Send timed out (TimeOut)")
	fs.DurationVar(&c.CloseLinger, "close-linger", supersocket.DefaultCloseLinger, "how long a closing session may flush queued bytes; negative = drop them")
	fs.DurationVar(&c.KeepAlive, "keep-alive", supersocket.DefaultKeepAlive, "TCP keep-alive period; negative = off")
	fs.BoolVar(&c.Nagle, "nagle", false, "turn Nagle's algorithm on (TCP_NODELAY off)")
	fs.IntVar(&c.SocketReadBuffer, "socket-read-buffer", 0, "SO_RCVBUF in `bytes`; 0 = OS default")
	fs.IntVar(&c.SocketWriteBuffer, "socket-write-buffer", 0, "SO_SNDBUF in `bytes`; 0 = OS default")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate `file`: serve TLS on every TCP listener (reloaded on SIGHUP)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `file` for -tls-cert")
	fs.StringVar(&f.tlsCA, "tls-client-ca", "", "PEM `file` of CAs for client certificates (mTLS; reloaded on SIGHUP)")
	fs.StringVar(&f.tlsClient, "tls-client-auth", "", "client certificates: none, optional or required (default: required with -tls-client-ca)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", supersocket.DefaultHandshakeTimeout, "TLS handshake bound")
	fs.DurationVar(&c.FirstRequestTimeout, "first-request-timeout", 0, "close sessions without a complete request this long after connecting (TimeOut); 0 = off")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", 0, "most live sessions per remote IP; 0 = no cap")
	fs.Float64Var(&c.AcceptRate, "accept-rate", 0, "most connections accepted per second; 0 = no limit")
	fs.IntVar(&c.AcceptBurst, "accept-burst", 0, "accept rate limiter burst (default: the rate)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return fs
}

// flagOf names the flag behind a Config field, for error messages.
var flagOf = map[string]string{
	"Mode":                "-mode",
	"MaxConnections":      "-max-connections",
	"MaxRequestLength":    "-max-request-length",
	"ReceiveBufferSize":   "-receive-buffer-size",
	"SendQueueSize":       "-send-queue-size",
	"SendQueueBytes":      "-send-queue-bytes",
	"IdleTimeout":         "-idle-timeout",
	"IdleCheckInterval":   "-idle-check-interval",
	"SocketReadBuffer":    "-socket-read-buffer",
	"SocketWriteBuffer":   "-socket-write-buffer",
	"HandshakeTimeout":    "-handshake-timeout",
	"FirstRequestTimeout": "-first-request-timeout",
	"MaxConnectionsPerIP": "-max-connections-per-ip",
	"AcceptRate":          "-accept-rate",
	"AcceptBurst":         "-accept-burst",
}

// tlsFlag names the flag behind a TLSConfig field.
var tlsFlag = map[string]string{
	"CertFile":     "-tls-cert",
	"KeyFile":      "-tls-key",
	"ClientCAFile": "-tls-client-ca",
	"ClientAuth":   "-tls-client-auth",
	"":             "-tls-cert",
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	var f serveFlags
	fs := newServeFlagSet(&f, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the flag package has printed the problem and the usage
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	app, err := apps.Lookup(f.app)
	if err != nil {
		return usageError(stderr, fmt.Errorf("-app: %w", err))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError(stderr, fmt.Errorf("-log-level: %q is not debug, info, warn or error", f.logLevel))
	}
	tlsCfg, err := f.tls()
	if err != nil {
		return usageError(stderr, err)
	}
	for a := range strings.SplitSeq(f.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			f.cfg.Listeners = append(f.cfg.Listeners, supersocket.ListenerConfig{Addr: a, TLS: tlsCfg})
		}
	}
	if tlsCfg != nil && f.cfg.Mode == "udp" {
		return usageError(stderr, errors.New("-tls-cert: TLS needs -mode tcp"))
	}
	if f.cfg.Name == "" {
		f.cfg.Name = f.app
	}
	f.cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	srv, err := app(f.cfg)
	if err != nil {
		var ce *supersocket.ConfigError
		if errors.As(err, &ce) {
			name := flagOf[ce.Field]
			if strings.HasPrefix(ce.Field, "Listeners") {
				name = "-addr"
				if _, field, ok := strings.Cut(ce.Field, ".TLS"); ok {
					name = tlsFlag[strings.TrimPrefix(field, ".")]
				}
			}
			if name != "" {
				return usageError(stderr, fmt.Errorf("%s: %s", name, ce.Problem))
			}
		}
		return usageError(stderr, err)
	}
	// Signals are caught before the listeners open, so one sent as soon as the server
	// answers is a graceful shutdown, never the default kill.
	ctx, again, release := signalled(ctx)
	defer release()
	if err := srv.Start(); err != nil {
		fmt.Fprintf(stderr, "supersocket: %v\n", err)
		return exitError
	}
	stopReload := reloadOnHangup(srv, f.cfg.Logger)
	defer stopReload()
	go func() {
		// A second signal while shutting down: stop at once.
		select {
		case <-again:
			f.cfg.Logger.Warn("second signal: stopping now")
			srv.Stop()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	err = srv.Serve(ctx)
	st := srv.Stats()
	f.cfg.Logger.Info("exiting", "uptime", time.Since(start).Round(time.Millisecond), "accepted", st.Accepted, "requests", st.Requests)
	if err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fmt.Fprintf(stderr, "supersocket: %v\n", err)
		return exitError
	}
	return exitOK
}

// tls builds the listeners' TLS configuration from the -tls-* flags; nil without them.
func (f *serveFlags) tls() (*supersocket.TLSConfig, error) {
	if f.tlsCert == "" && f.tlsKey == "" && f.tlsCA == "" && f.tlsClient == "" {
		return nil, nil
	}
	if f.tlsCert == "" || f.tlsKey == "" {
		return nil, errors.New("-tls-cert and -tls-key go together (and -tls-client-ca needs them)")
	}
	t := &supersocket.TLSConfig{CertFile: f.tlsCert, KeyFile: f.tlsKey, ClientCAFile: f.tlsCA}
	switch f.tlsClient {
	case "":
	case "none":
		t.ClientAuth = supersocket.ClientCertNone
	case "optional":
		t.ClientAuth = supersocket.ClientCertOptional
	case "required":
		t.ClientAuth = supersocket.ClientCertRequired
	default:
		return nil, fmt.Errorf("-tls-client-auth: %q is not none, optional or required", f.tlsClient)
	}
	return t, nil
}

func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "supersocket serve: %v\n", err)
	return exitUsage
}
