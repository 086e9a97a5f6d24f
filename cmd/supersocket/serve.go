package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/cluster"
	"github.com/supersocket-go/supersocket/cluster/natsd"
	"github.com/supersocket-go/supersocket/internal/apps"
	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/metrics"
)

// serveFlags are the flags of "serve": Config's fields in kebab-case, plus the
// process-wide -config, -metrics-addr, -log-level and -log-format.
type serveFlags struct {
	config      string
	metricsAddr string
	logLevel    string
	logFormat   string
	// drainTimeout bounds the drain of a stop or a hand-over (process-wide).
	drainTimeout time.Duration

	app       string
	addr      string
	tlsCert   string
	tlsKey    string
	tlsCA     string
	tlsClient string
	ws        wsFlags
	cfg       supersocket.Config
	cl        clusterFlags // process-wide, like -metrics-addr
}

// globalFlags apply to the whole process; every other flag configures one server.
var globalFlags = append([]string{"config", "metrics-addr", "log-level", "log-format", "drain-timeout"}, clusterFlagNames...)

func defaultServeFlags() serveFlags {
	return serveFlags{
		logLevel:     "info",
		logFormat:    "text",
		drainTimeout: defaultDrainTimeout,
		app:          "commandline",
		addr:         "127.0.0.1:2012",
		cfg: supersocket.Config{
			Mode:              "tcp",
			MaxConnections:    supersocket.DefaultMaxConnections,
			MaxRequestLength:  supersocket.DefaultMaxRequestLength,
			ReceiveBufferSize: supersocket.DefaultReceiveBufferSize,
			SendQueueSize:     supersocket.DefaultSendQueueSize,
			SendQueueBytes:    supersocket.DefaultSendQueueBytes,
			SendTimeout:       supersocket.DefaultSendTimeout,
			CloseLinger:       supersocket.DefaultCloseLinger,
			KeepAlive:         supersocket.DefaultKeepAlive,
			HandshakeTimeout:  supersocket.DefaultHandshakeTimeout,
			DatagramQueueSize: supersocket.DefaultDatagramQueueSize,
		},
	}
}

// newServeFlagSet defines the flags over f; each flag's default is f's current value, so
// parsing over a server read from a file changes only what the command line sets.
func newServeFlagSet(f *serveFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("supersocket serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: supersocket serve [flags]                one server, configured by flags
       supersocket serve -config FILE [flags]   every server a YAML file declares

Flags other than -config, -metrics-addr, -log-level, -log-format and -drain-timeout override the file's
settings when it declares one server.

`)
		fs.PrintDefaults()
	}
	c := &f.cfg
	fs.StringVar(&f.config, "config", f.config, "YAML `file` declaring servers (see examples/servers.yaml); ${VAR} and ${VAR:-default} are expanded")
	fs.StringVar(&f.metricsAddr, "metrics-addr", f.metricsAddr, "serve /metrics (Prometheus), /status (JSON) and /debug/pprof/ on `host:port`; empty = off")
	fs.StringVar(&f.logLevel, "log-level", f.logLevel, "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", f.logFormat, "log format: text or json")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", f.drainTimeout, "on SIGTERM, SIGINT or after a SIGUSR2 hand-over: how long sessions may finish what they were sent before the rest are closed (ServerShutdown)")
	fs.StringVar(&f.app, "app", f.app, "app to serve: "+strings.Join(apps.Names(), ", "))
	fs.StringVar(&f.addr, "addr", f.addr, "address(es) to listen on, host:port, comma-separated")
	fs.StringVar(&c.Mode, "mode", c.Mode, "transport: tcp, udp (one request per datagram, replies to the sender) or ws (WebSocket; with -tls-cert, wss)")
	fs.StringVar(&f.ws.path, "ws-path", f.ws.path, "-mode ws: the path served (others get 404)")
	fs.StringVar(&f.ws.origins, "ws-origin", f.ws.origins, "-mode ws: allowed Origin values, comma-separated (\"https://*.example.com\" for subdomains); empty = any")
	fs.BoolVar(&f.ws.compression, "ws-compression", f.ws.compression, "-mode ws: permessage-deflate with clients that offer it")
	fs.DurationVar(&f.ws.ping, "ws-ping-interval", f.ws.ping, "-mode ws: ping a session silent this long, close it (TimeOut) without a pong; 0 = off")
	fs.StringVar(&c.Engine, "engine", c.Engine, "how plain TCP listeners serve sessions: goroutine or epoll (event loops; Linux) (default: $SUPERSOCKET_ENGINE, else goroutine)")
	fs.StringVar(&c.Name, "name", c.Name, "server name in logs and metrics (default: the app's name)")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "most live sessions; more are refused at accept")
	fs.IntVar(&c.MaxRequestLength, "max-request-length", c.MaxRequestLength, "largest request in `bytes`; longer closes the session (ProtocolError)")
	fs.IntVar(&c.ReceiveBufferSize, "receive-buffer-size", c.ReceiveBufferSize, "pooled read buffer in `bytes`")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "close sessions idle this long (TimeOut); 0 = off")
	fs.DurationVar(&c.IdleCheckInterval, "idle-check-interval", c.IdleCheckInterval, "how often idleness is checked (default: idle-timeout/4, 10ms..1s)")
	fs.IntVar(&c.SendQueueSize, "send-queue-size", c.SendQueueSize, "send queue bound in messages per session")
	fs.IntVar(&c.SendQueueBytes, "send-queue-bytes", c.SendQueueBytes, "send queue bound in `bytes` per session")
	fs.DurationVar(&c.SendTimeout, "send-timeout", c.SendTimeout, "how long Send waits on a full queue; negative = no wait")
	fs.BoolVar(&c.CloseOnSendTimeout, "close-on-send-timeout", c.CloseOnSendTimeout, "close a session whose Send timed out (TimeOut)")
	fs.DurationVar(&c.CloseLinger, "close-linger", c.CloseLinger, "how long a closing session may flush queued bytes; negative = drop them")
	fs.DurationVar(&c.KeepAlive, "keep-alive", c.KeepAlive, "TCP keep-alive period; negative = off")
	fs.BoolVar(&c.Nagle, "nagle", c.Nagle, "turn Nagle's algorithm on (TCP_NODELAY off)")
	fs.IntVar(&c.SocketReadBuffer, "socket-read-buffer", c.SocketReadBuffer, "SO_RCVBUF in `bytes`; 0 = OS default")
	fs.IntVar(&c.SocketWriteBuffer, "socket-write-buffer", c.SocketWriteBuffer, "SO_SNDBUF in `bytes`; 0 = OS default")
	fs.StringVar(&f.tlsCert, "tls-cert", f.tlsCert, "PEM certificate `file`: serve TLS on every TCP listener (reloaded on SIGHUP)")
	fs.StringVar(&f.tlsKey, "tls-key", f.tlsKey, "PEM private key `file` for -tls-cert")
	fs.StringVar(&f.tlsCA, "tls-client-ca", f.tlsCA, "PEM `file` of CAs for client certificates (mTLS; reloaded on SIGHUP)")
	fs.StringVar(&f.tlsClient, "tls-client-auth", f.tlsClient, "client certificates: none, optional or required (default: required with -tls-client-ca)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "TLS handshake bound")
	fs.DurationVar(&c.FirstRequestTimeout, "first-request-timeout", c.FirstRequestTimeout, "close sessions without a complete request this long after connecting (TimeOut); 0 = off")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", c.MaxConnectionsPerIP, "most live sessions per remote IP; 0 = no cap")
	fs.Float64Var(&c.AcceptRate, "accept-rate", c.AcceptRate, "most connections accepted per second; 0 = no limit")
	fs.IntVar(&c.AcceptBurst, "accept-burst", c.AcceptBurst, "accept rate limiter burst (default: the rate)")
	fs.IntVar(&c.DatagramQueueSize, "datagram-queue-size", c.DatagramQueueSize, "UDP: datagrams a session may have waiting; more are dropped")
	f.cl.define(fs)
	return fs
}

// flagOf names the flag behind a Config field, for error messages.
var flagOf = map[string]string{
	"Name":                "-name",
	"Mode":                "-mode",
	"Engine":              "-engine",
	"MaxConnections":      "-max-connections",
	"MaxRequestLength":    "-max-request-length",
	"ReceiveBufferSize":   "-receive-buffer-size",
	"SendQueueSize":       "-send-queue-size",
	"SendQueueBytes":      "-send-queue-bytes",
	"SendTimeout":         "-send-timeout",
	"CloseOnSendTimeout":  "-close-on-send-timeout",
	"CloseLinger":         "-close-linger",
	"IdleTimeout":         "-idle-timeout",
	"IdleCheckInterval":   "-idle-check-interval",
	"KeepAlive":           "-keep-alive",
	"Nagle":               "-nagle",
	"SocketReadBuffer":    "-socket-read-buffer",
	"SocketWriteBuffer":   "-socket-write-buffer",
	"HandshakeTimeout":    "-handshake-timeout",
	"FirstRequestTimeout": "-first-request-timeout",
	"MaxConnectionsPerIP": "-max-connections-per-ip",
	"AcceptRate":          "-accept-rate",
	"AcceptBurst":         "-accept-burst",
	"DatagramQueueSize":   "-datagram-queue-size",
}

// tlsFlag names the flag behind a TLSConfig field.
var tlsFlag = map[string]string{
	"CertFile":     "-tls-cert",
	"KeyFile":      "-tls-key",
	"ClientCAFile": "-tls-client-ca",
	"ClientAuth":   "-tls-client-auth",
	"":             "-tls-cert",
}

// flagFor names the flag behind a ConfigError's field, or "".
func flagFor(field string) string {
	if strings.HasPrefix(field, "Listeners") {
		if _, tlsField, ok := strings.Cut(field, ".TLS"); ok {
			return tlsFlag[strings.TrimPrefix(tlsField, ".")]
		}
		if _, wsField, ok := strings.Cut(field, ".WebSocket"); ok {
			return wsFlag[strings.TrimPrefix(wsField, ".")]
		}
		return "-addr"
	}
	return flagOf[field]
}

// serverSpec is one server to run, from the flags or from an entry of a config file.
type serverSpec struct {
	app   string
	cfg   supersocket.Config // without Logger and ObserveRequest, which build sets
	named bool               // cfg.Name was given, not taken from the app
	// cluster, when set, makes the server a node of a cluster (a cluster-aware app).
	cluster *cluster.Config
	// place turns New's *ConfigError into the message to show: naming the flag, or the
	// file, line and key.
	place func(*supersocket.ConfigError) error
}

// namedServer is a built server and what the status page says of it.
type namedServer struct {
	name, app string
	srv       apps.Server
}

// build makes the server; it binds nothing.
func (s *serverSpec) build(log *slog.Logger, hist *metrics.RequestHistogram) (namedServer, error) {
	app, err := apps.Lookup(s.app)
	if err != nil {
		return namedServer{}, err
	}
	cfg := s.cfg
	cfg.Logger = log
	if hist != nil {
		cfg.ObserveRequest = hist.Observer(cfg.Name)
	}
	var srv apps.Server
	if apps.SpeaksLines(s.app) {
		// Over WebSocket a line app speaks text messages, a line each.
		cfg.Listeners = slices.Clone(cfg.Listeners)
		for i, l := range cfg.Listeners {
			if l.WebSocket != nil {
				ws := *l.WebSocket
				ws.Text, ws.Lines = true, true
				cfg.Listeners[i].WebSocket = &ws
			}
		}
	}
	if s.cluster != nil {
		var capp apps.ClusterApp
		if capp, err = apps.LookupCluster(s.app); err == nil {
			srv, err = capp(cfg, *s.cluster)
		}
	} else {
		srv, err = app(cfg)
	}
	if err != nil {
		var ce *supersocket.ConfigError
		if errors.As(err, &ce) && s.place != nil {
			return namedServer{}, s.place(ce)
		}
		return namedServer{}, err
	}
	return namedServer{name: cfg.Name, app: s.app, srv: srv}, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	f := defaultServeFlags()
	fs := newServeFlagSet(&f, stderr)
	if status, ok := cli.ParseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	var specs []serverSpec
	metricsAddr, logLevel, logFormat, drainTimeout := f.metricsAddr, f.logLevel, f.logFormat, f.drainTimeout
	cl := f.cl
	if f.config == "" {
		spec, err := f.spec()
		if err != nil {
			return usageError(stderr, err)
		}
		specs = []serverSpec{spec}
	} else {
		cf, err := loadConfigFile(f.config)
		if err != nil {
			return usageError(stderr, err)
		}
		if !set["metrics-addr"] {
			metricsAddr = cf.cfg.MetricsAddr
		}
		if !set["log-level"] && cf.cfg.LogLevel != "" {
			logLevel = cf.cfg.LogLevel
		}
		if !set["log-format"] && cf.cfg.LogFormat != "" {
			logFormat = cf.cfg.LogFormat
		}
		if !set["drain-timeout"] && cf.cfg.DrainTimeout != nil {
			drainTimeout = time.Duration(*cf.cfg.DrainTimeout)
		}
		if cf.cfg.Cluster != nil {
			cl = cf.cfg.Cluster.overlay(f.cl, set)
		}
		specs = cf.servers
		var serverFlags []string
		for name := range set {
			if !slices.Contains(globalFlags, name) {
				serverFlags = append(serverFlags, "-"+name)
			}
		}
		slices.Sort(serverFlags)
		switch {
		case len(serverFlags) == 0:
		case len(specs) > 1:
			return usageError(stderr, fmt.Errorf("%s: %s declares %d servers, and such flags override a file of one server only; "+
				"set them in the file (with -config, only -metrics-addr, -log-level and -log-format apply to every server)",
				strings.Join(serverFlags, ", "), f.config, len(specs)))
		default:
			if specs[0], err = overlayFlags(specs[0], args, set); err != nil {
				return usageError(stderr, err)
			}
		}
	}
	level, err := parseLogLevel(logLevel)
	if err != nil {
		return usageError(stderr, fmt.Errorf("-log-level: %w", err))
	}
	if logFormat != "text" && logFormat != "json" {
		return usageError(stderr, fmt.Errorf("-log-format: %q is not text or json", logFormat))
	}
	if drainTimeout < 0 {
		return usageError(stderr, fmt.Errorf("-drain-timeout: %v is negative", drainTimeout))
	}
	if metricsAddr != "" {
		if err := checkHostPort(metricsAddr); err != nil {
			return usageError(stderr, fmt.Errorf("-metrics-addr: %w", err))
		}
	}
	node := -1
	if cl.enabled() {
		if err := cl.check(); err != nil {
			return usageError(stderr, err)
		}
		if node, err = assignNode(specs); err != nil {
			return usageError(stderr, err)
		}
	}
	log := newLogger(stderr, level, logFormat)
	// The request-duration histogram costs a clock reading per request; only a
	// server whose metrics are served pays for it.
	var hist *metrics.RequestHistogram
	if metricsAddr != "" {
		hist = metrics.NewRequestHistogram()
	}
	var embedded *natsd.Server
	if node >= 0 {
		natsURL := cl.URL
		if cl.Listen != "" {
			if embedded, err = startEmbeddedNATS(cl, log); err != nil {
				fmt.Fprintf(stderr, "supersocket: cluster: %v\n", err)
				return cli.ExitError
			}
			defer embedded.Shutdown()
			natsURL = embedded.ClientURL()
		}
		cc := cl.config(natsURL, log)
		specs[node].cluster = &cc
	}
	// Built once to check the configuration with nothing bound, then again over the
	// sockets held for a hand-over (handover.go).
	for i := range specs {
		if _, err := specs[i].build(log, hist); err != nil {
			return usageError(stderr, err)
		}
	}
	inherited, err := supersocket.InheritedFiles()
	if err != nil {
		log.Warn("inherited sockets", "err", err)
	}
	if len(inherited) > 0 {
		log.Info("inherited sockets", "count", len(inherited))
	}
	held, rest, err := holdListeners(specs, inherited)
	if err != nil {
		fmt.Fprintf(stderr, "supersocket: %v\n", err)
		closeUnused(rest, log)
		return cli.ExitError
	}
	servers := make([]namedServer, 0, len(specs))
	for i := range specs {
		ns, err := specs[i].build(log, hist)
		if err != nil {
			held.close()
			return usageError(stderr, err)
		}
		servers = append(servers, ns)
	}
	return runServers(ctx, servers, runOptions{
		hist: hist, metricsAddr: metricsAddr, held: held, inherited: rest, drainTimeout: drainTimeout,
	}, log, stderr)
}

// spec makes the one server the flags describe.
func (f *serveFlags) spec() (serverSpec, error) {
	if _, err := apps.Lookup(f.app); err != nil {
		return serverSpec{}, fmt.Errorf("-app: %w", err)
	}
	tlsCfg, err := f.tls()
	if err != nil {
		return serverSpec{}, err
	}
	cfg := f.cfg
	ws, err := f.ws.config(cfg.Mode == "ws")
	if err != nil {
		return serverSpec{}, err
	}
	for a := range strings.SplitSeq(f.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Listeners = append(cfg.Listeners, supersocket.ListenerConfig{Addr: a, TLS: tlsCfg, WebSocket: ws})
		}
	}
	if tlsCfg != nil && cfg.Mode == "udp" {
		return serverSpec{}, errors.New("-tls-cert: TLS needs -mode tcp or ws")
	}
	spec := serverSpec{app: f.app, cfg: cfg, named: cfg.Name != ""}
	if !spec.named {
		spec.cfg.Name = f.app
	}
	spec.place = func(ce *supersocket.ConfigError) error {
		if name := flagFor(ce.Field); name != "" {
			return fmt.Errorf("%s: %s", name, ce.Problem)
		}
		return ce
	}
	return spec, nil
}

// overlayFlags applies the flags set on the command line over the one server of a config
// file: args are parsed again, over the file's values, so what the command line does not
// set keeps the file's value. -addr replaces the file's listeners; -tls-* set the TLS of
// every TCP listener.
func overlayFlags(spec serverSpec, args []string, set map[string]bool) (serverSpec, error) {
	g := serveFlags{app: spec.app, cfg: spec.cfg}
	if err := newServeFlagSet(&g, io.Discard).Parse(args); err != nil {
		return spec, err // parsed once already: cannot happen
	}
	out := spec
	out.cfg = g.cfg
	out.cfg.Listeners = slices.Clone(spec.cfg.Listeners)
	if set["app"] {
		if _, err := apps.Lookup(g.app); err != nil {
			return spec, fmt.Errorf("-app: %w", err)
		}
		out.app = g.app
		if !spec.named && !set["name"] {
			out.cfg.Name = g.app
		}
	}
	if set["name"] {
		out.named = g.cfg.Name != ""
		if !out.named {
			out.cfg.Name = out.app
		}
	}
	if set["addr"] {
		out.cfg.Listeners = nil
		for a := range strings.SplitSeq(g.addr, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out.cfg.Listeners = append(out.cfg.Listeners, supersocket.ListenerConfig{Addr: a})
			}
		}
	}
	if set["mode"] || set["addr"] || g.ws.set(set) {
		// The WebSocket flags configure every WebSocket listener.
		for i := range out.cfg.Listeners {
			l := &out.cfg.Listeners[i]
			if cmp.Or(l.Network, out.cfg.Mode) != "ws" {
				continue
			}
			ws := l.WebSocket
			if ws == nil || g.ws.set(set) {
				var err error
				if ws, err = g.ws.config(true); err != nil {
					return spec, err
				}
			}
			l.WebSocket = ws
		}
	}
	tlsSet := set["tls-cert"] || set["tls-key"] || set["tls-client-ca"] || set["tls-client-auth"]
	if tlsSet {
		tlsCfg, err := g.tls()
		if err != nil {
			return spec, err
		}
		n := 0
		for i := range out.cfg.Listeners {
			l := &out.cfg.Listeners[i]
			network := l.Network
			if network == "" {
				network = out.cfg.Mode
			}
			if !strings.HasPrefix(network, "udp") {
				l.TLS = tlsCfg
				n++
			}
		}
		if n == 0 {
			return spec, errors.New("-tls-cert: the server has no TCP listener")
		}
	}
	filePlace := spec.place
	out.place = func(ce *supersocket.ConfigError) error {
		name := flagFor(ce.Field)
		if name != "" && set[strings.TrimPrefix(name, "-")] ||
			strings.HasPrefix(ce.Field, "Listeners") && (set["addr"] && !strings.Contains(ce.Field, ".TLS") || tlsSet && strings.Contains(ce.Field, ".TLS")) {
			return fmt.Errorf("%s: %s", name, ce.Problem)
		}
		return filePlace(ce)
	}
	return out, nil
}

// tls builds the listeners' TLS configuration from the -tls-* flags; nil without them.
func (f *serveFlags) tls() (*supersocket.TLSConfig, error) {
	if f.tlsCert == "" && f.tlsKey == "" && f.tlsCA == "" && f.tlsClient == "" {
		return nil, nil
	}
	if f.tlsCert == "" || f.tlsKey == "" {
		return nil, errors.New("-tls-cert and -tls-key go together (and -tls-client-ca needs them)")
	}
	policy, err := parseClientAuth(f.tlsClient)
	if err != nil {
		return nil, fmt.Errorf("-tls-client-auth: %w", err)
	}
	return &supersocket.TLSConfig{CertFile: f.tlsCert, KeyFile: f.tlsKey, ClientCAFile: f.tlsCA, ClientAuth: policy}, nil
}

func parseClientAuth(s string) (supersocket.ClientCertPolicy, error) {
	switch s {
	case "":
		return supersocket.ClientCertDefault, nil
	case "none":
		return supersocket.ClientCertNone, nil
	case "optional":
		return supersocket.ClientCertOptional, nil
	case "required":
		return supersocket.ClientCertRequired, nil
	}
	return 0, fmt.Errorf("%q is not none, optional or required", s)
}

func parseLogLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return level, nil
}

func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "supersocket serve: %v\n", err)
	return cli.ExitUsage
}

// serverGroup reloads the TLS of every server on SIGHUP.
type serverGroup []namedServer

func (g serverGroup) ReloadTLS() error {
	var errs []error
	for _, s := range g {
		if err := s.srv.ReloadTLS(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// runOptions are what runServers needs besides the servers.
type runOptions struct {
	hist         *metrics.RequestHistogram
	metricsAddr  string
	held         *heldSockets                // the servers' sockets, for a hand-over
	inherited    []supersocket.InheritedFile // inherited, no server took them
	drainTimeout time.Duration
}

// runServers starts the metrics endpoint, then every server, all or none, and runs them
// until ctx ends or a signal comes. SIGINT or SIGTERM drains them (Server.Drain, bounded
// by the drain timeout; a second signal: what is left closes at once). SIGUSR2 hands the
// sockets to a new process first (handover.go), then drains the same way; if the new
// process does not come up, this one keeps serving. The metrics endpoint closes last.
func runServers(ctx context.Context, servers []namedServer, o runOptions, log *slog.Logger, stderr io.Writer) int {
	// Signals are caught before anything opens, so one sent as soon as a server answers
	// is a graceful shutdown (or a hand-over), never the default kill.
	ctx, again, release := cli.Signalled(ctx)
	defer release()
	restart, stopRestart := restartSignal()
	defer stopRestart()
	start := time.Now()
	held := o.held
	defer held.close()

	var obs *observability
	if o.metricsAddr != "" {
		ln, f, err := metricsListener(o.metricsAddr, o.inherited)
		if err != nil {
			fmt.Fprintf(stderr, "supersocket: metrics: %v\n", err)
			closeUnused(o.inherited, log)
			return cli.ExitError
		}
		held.files = append(held.files, f)
		held.names = append(held.names, metricsSocket)
		o.inherited = slices.DeleteFunc(o.inherited, func(i supersocket.InheritedFile) bool { return i.File == f })
		obs = startObservability(ln, servers, o.hist, start, log)
	}
	closeUnused(o.inherited, log)
	// SIGHUP is caught before anything listens, so one sent as soon as a server answers
	// reloads certificates rather than killing the process.
	stopReload := reloadOnHangup(serverGroup(servers), log)
	defer stopReload()
	for i, s := range servers {
		if err := s.srv.Start(); err != nil {
			fmt.Fprintf(stderr, "supersocket: %s: %v\n", s.name, err)
			for _, started := range servers[:i] {
				started.srv.Stop()
			}
			obs.close()
			return cli.ExitError
		}
	}
	reportReady(log)

	// Until a signal to stop, or a hand-over that worked.
	var handedOver bool
	var handoverStart time.Time
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-restart:
			handoverStart = time.Now()
			log.Info("SIGUSR2: handing the listening sockets over to a new process", "sockets", len(held.files))
			pid, err := handover(held, stderr, log)
			if err != nil {
				log.Error("hand-over failed; still serving", "err", err)
				continue
			}
			handedOver = true
			log.Info("handed over", "new_pid", pid, "took", time.Since(handoverStart).Round(time.Microsecond))
			break wait
		}
	}
	// The held sockets close: from now on only the servers' own duplicates (closed as
	// the drain begins) and, after a hand-over, the new process's hold them.
	held.close()
	stopNow := make(chan struct{})
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		// A signal during the drain ends it: the second one, or the first after a
		// hand-over (this process had not been told to stop before; one that came
		// during the hand-over counts as the first).
		var sig <-chan struct{}
		if handedOver && ctx.Err() == nil {
			sig = ctx.Done()
		}
		select {
		case <-again:
		case <-sig:
		case <-stopWatch:
			return
		}
		close(stopNow)
	}()
	log.Info("draining", "drain_timeout", o.drainTimeout)
	errs := drainAll(ctx, servers, o.drainTimeout, stopNow, log)
	obs.close()

	var total supersocket.Stats
	for _, s := range servers {
		st := s.srv.Stats()
		total.Accepted += st.Accepted
		total.Requests += st.Requests
	}
	attrs := []any{"pid", os.Getpid(), "uptime", time.Since(start).Round(time.Millisecond), "servers", len(servers),
		"accepted", total.Accepted, "requests", total.Requests}
	if handedOver {
		attrs = append(attrs, "since_handover", time.Since(handoverStart).Round(time.Millisecond))
	}
	log.Info("exiting", attrs...)
	code := cli.ExitOK
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(stderr, "supersocket: %s: %v\n", servers[i].name, err)
			code = cli.ExitError
		}
	}
	return code
}
