// Package natsd runs a NATS server with JetStream inside the process: the embedded
// server of a one-command development cluster (supersocket serve -cluster-listen) and
// of the cluster package's tests. Production clusters usually run nats-server on its
// own; the cluster package only needs its URL.
package natsd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded NATS server.
type Options struct {
	// Addr is host:port to listen on for NATS clients; port 0 picks a free one.
	// Default "127.0.0.1:4222".
	Addr string
	// StoreDir holds JetStream's data. Default: a new temporary folder, removed at
	// Shutdown.
	StoreDir string
	// ReadyTimeout bounds how long Start waits for the server to accept clients.
	// Default 10s.
	ReadyTimeout time.Duration
}

// Server is a running embedded NATS server. Its methods are safe from any goroutine.
type Server struct {
	ns      *server.Server
	tempDir string // removed at Shutdown
}

// Start starts a NATS server with JetStream and returns once it accepts clients.
func Start(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:4222"
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	host, portText, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("natsd: %q is not host:port: %v", o.Addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("natsd: %q: port %q is not a number from 0 to 65535", o.Addr, portText)
	}
	if port != 0 {
		// The server reports a listen failure only in its log: find it out first.
		ln, err := net.Listen("tcp", o.Addr)
		if err != nil {
			return nil, fmt.Errorf("natsd: listen %s: %w", o.Addr, err)
		}
		ln.Close()
	}
	s := &Server{}
	if o.StoreDir == "" {
		if s.tempDir, err = os.MkdirTemp("", "supersocket-nats-"); err != nil {
			return nil, fmt.Errorf("natsd: %w", err)
		}
		o.StoreDir = s.tempDir
	}
	opts := &server.Options{
		Host:      host,
		Port:      int(port),
		JetStream: true,
		StoreDir:  o.StoreDir,
		NoLog:     true,
		NoSigs:    true,
	}
	if port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if s.ns, err = server.NewServer(opts); err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("natsd: %w", err)
	}
	// A listen failure is logged and ends Start's goroutine; without a logger, the
	// readiness wait below is what reports it.
	go s.ns.Start()
	if !s.ns.ReadyForConnections(o.ReadyTimeout) {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.removeTemp()
		return nil, fmt.Errorf("natsd: the server on %s did not become ready within %v", o.Addr, o.ReadyTimeout)
	}
	return s, nil
}

// ClientURL is the URL clients connect to, such as nats://127.0.0.1:4222.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ns.Addr() }

// Shutdown stops the server, closing every client connection, waits until it has
// stopped, and removes its temporary store.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.removeTemp()
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		os.RemoveAll(s.tempDir)
	}
}
