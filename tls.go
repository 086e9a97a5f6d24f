package supersocket

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// TLSConfig serves TLS on a listener: certificate and key files, or a *tls.Config, or
// both (the files then replace the Config's certificates).
type TLSConfig struct {
	// CertFile and KeyFile are PEM files: the certificate chain and its private key.
	// Server.ReloadTLS reads them again without a restart.
	CertFile, KeyFile string
	// ClientCAFile is a PEM bundle of the CAs that sign client certificates (mTLS).
	// Reloaded with the certificate.
	ClientCAFile string
	// ClientAuth says whether clients must present a certificate. With ClientCAFile set
	// the default is ClientCertRequired; without it, ClientCertNone.
	ClientAuth ClientCertPolicy
	// Certificates are more certificate and key files, for other host names: a client's
	// server name (SNI) picks the first pair whose certificate covers it, CertFile's
	// first; a client without one, or with a name none covers, gets the first pair.
	// Reloaded with the rest.
	Certificates []CertKeyFiles
	// NextProtos lists the application protocols offered by ALPN, most preferred first;
	// the one a client chose is Session.TLS().NegotiatedProtocol. It replaces Config's.
	NextProtos []string
	// Config, when set, is the base configuration (cipher suites, ALPN, GetCertificate for
	// certificates managed by the application…). Its MinVersion defaults to TLS 1.2.
	Config *tls.Config
}

// CertKeyFiles is a certificate chain's PEM file and its private key's.
type CertKeyFiles struct {
	CertFile, KeyFile string
}

// ClientCertPolicy says what a TLS listener asks of client certificates.
type ClientCertPolicy int

const (
	// ClientCertDefault: ClientCertRequired when a ClientCAFile is given, else ClientCertNone.
	ClientCertDefault ClientCertPolicy = iota
	// ClientCertNone: no client certificate is requested.
	ClientCertNone
	// ClientCertOptional: a client may present a certificate; if it does, it must verify.
	ClientCertOptional
	// ClientCertRequired: a client must present a certificate that verifies (mTLS).
	ClientCertRequired
)

// tlsListener holds a listener's current TLS configuration, swapped whole on reload so
// handshakes in flight keep the one they started with.
type tlsListener struct {
	spec    TLSConfig
	field   string // "Listeners[i].TLS", for errors
	current atomic.Pointer[tls.Config]
	outer   *tls.Config // hands every handshake the current configuration
}

func newTLSListener(spec TLSConfig, field string) (*tlsListener, error) {
	if spec.Config == nil && spec.CertFile == "" && spec.KeyFile == "" && len(spec.Certificates) == 0 {
		return nil, configError(field, "needs CertFile and KeyFile, Certificates, or Config")
	}
	if (spec.CertFile == "") != (spec.KeyFile == "") {
		return nil, configError(field, "CertFile and KeyFile go together")
	}
	for i, p := range spec.Certificates {
		if p.CertFile == "" || p.KeyFile == "" {
			return nil, configError(fmt.Sprintf("%s.Certificates[%d]", field, i), "CertFile and KeyFile are both required")
		}
	}
	if spec.ClientAuth < ClientCertDefault || spec.ClientAuth > ClientCertRequired {
		return nil, configError(field+".ClientAuth", "unknown policy %d", spec.ClientAuth)
	}
	lt := &tlsListener{spec: spec, field: field}
	if err := lt.load(); err != nil {
		return nil, err
	}
	lt.outer = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return lt.current.Load(), nil },
	}
	return lt, nil
}

// load builds the configuration from the spec and its files.
func (lt *tlsListener) load() error {
	var cfg *tls.Config
	if lt.spec.Config != nil {
		cfg = lt.spec.Config.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if lt.spec.CertFile != "" || len(lt.spec.Certificates) > 0 {
		pairs := lt.spec.Certificates
		if lt.spec.CertFile != "" {
			pairs = append([]CertKeyFiles{{lt.spec.CertFile, lt.spec.KeyFile}}, pairs...)
		}
		cfg.Certificates = nil
		for i, p := range pairs {
			cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
			if err != nil {
				field := lt.field + ".CertFile"
				if lt.spec.CertFile == "" || i > 0 {
					field = fmt.Sprintf("%s.Certificates[%d]", lt.field, i-len(pairs)+len(lt.spec.Certificates))
				}
				return configError(field, "%v", err)
			}
			// Several pairs: crypto/tls gives a client the first whose certificate
			// covers its server name (Config.Certificates).
			cfg.Certificates = append(cfg.Certificates, cert)
		}
		cfg.GetCertificate = nil
	}
	if len(lt.spec.NextProtos) > 0 {
		cfg.NextProtos = append([]string(nil), lt.spec.NextProtos...)
	}
	policy := lt.spec.ClientAuth
	if lt.spec.ClientCAFile != "" {
		pem, err := os.ReadFile(lt.spec.ClientCAFile)
		if err != nil {
			return configError(lt.field+".ClientCAFile", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return configError(lt.field+".ClientCAFile", "%s holds no PEM certificate", lt.spec.ClientCAFile)
		}
		cfg.ClientCAs = pool
		if policy == ClientCertDefault {
			policy = ClientCertRequired
		}
	}
	switch policy {
	case ClientCertNone:
		cfg.ClientAuth = tls.NoClientCert
	case ClientCertOptional:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientCertRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if cfg.ClientAuth >= tls.VerifyClientCertIfGiven && cfg.ClientCAs == nil && cfg.VerifyPeerCertificate == nil {
		return configError(lt.field+".ClientCAFile", "client certificates are verified, so a ClientCAFile (or Config.ClientCAs) is needed")
	}
	lt.current.Store(cfg)
	return nil
}

// ReloadTLS reads every TLS listener's certificate, key and client CA files again and
// uses them for the handshakes that start afterwards; sessions already established keep
// theirs. On error nothing changes for the listener that failed. Safe from any goroutine
// (the CLI calls it on SIGHUP).
func (srv *Server[T]) ReloadTLS() error {
	var errs []error
	for _, lt := range srv.tls {
		if lt == nil || lt.spec.CertFile == "" && lt.spec.ClientCAFile == "" && len(lt.spec.Certificates) == 0 {
			continue
		}
		if err := lt.load(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	srv.log.Info("tls configuration reloaded")
	return nil
}

// handshake runs the server side of a TLS handshake on the connection's own goroutine,
// never on the accept path, bounded by HandshakeTimeout; a stop ends it at once (the
// caller has listed c in srv.pending, which a stop closes). A failed handshake creates no
// session.
func (srv *Server[T]) handshake(c net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	if srv.State() == StateStopping {
		return nil, ErrNotRunning
	}
	tc := tls.Server(c, cfg)
	c.SetDeadline(time.Now().Add(srv.cfg.HandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return tc, nil
}

// TLS returns the session's TLS state (version, cipher, the client's verified
// certificates under mTLS), or nil when the session is not over TLS. Safe from any
// goroutine.
func (s *Session[T]) TLS() *tls.ConnectionState {
	st, ok := s.tr.(*stream[T])
	if !ok {
		return nil
	}
	tc := st.tlsConn.Load()
	if tc == nil {
		return nil
	}
	cs := tc.ConnectionState()
	return &cs
}

// StartTLS upgrades a plaintext TCP session to TLS with cfg (SuperSocket's
// ResetSessionSecurity; STARTTLS). Call it from the session's Request handler, typically
// right after sending the reply that tells the client to start its handshake: that
// reply, and everything queued before, leaves in plaintext. The server side of the
// handshake runs as soon as the handler returns, before any further byte is read, bounded
// by HandshakeTimeout; requests after it arrive decrypted, and TLS reports the new state.
// A failed handshake closes the session with CloseSocketError. It returns an error at once
// for a session that is not over TCP, a session already on TLS, or a nil cfg.
func (s *Session[T]) StartTLS(cfg *tls.Config) error {
	st, ok := s.tr.(*stream[T])
	switch {
	case cfg == nil:
		return errors.New("supersocket: StartTLS: nil tls.Config")
	case isLoop(s):
		return errors.New(`supersocket: StartTLS: a session of the epoll engine cannot upgrade to TLS (crypto/tls needs a net.Conn); serve its listener with Engine "goroutine"`)
	case !ok:
		return errors.New("supersocket: StartTLS: only TCP sessions can upgrade to TLS")
	case st.tlsConn.Load() != nil || st.upgrade != nil:
		return errors.New("supersocket: StartTLS: session already uses TLS")
	}
	if cfg.MinVersion == 0 {
		cfg = cfg.Clone()
		cfg.MinVersion = tls.VersionTLS12
	}
	st.upgrade = cfg
	s.switching = true // no further request of this read is dispatched before the handshake
	return nil
}

// upgradeTLS performs a StartTLS requested by the last handler: sends queued before it are
// flushed in plaintext, then the handshake runs over the raw connection, fed first with
// the bytes already received after the STARTTLS request (a client may pipeline its
// ClientHello).
func (st *stream[T]) upgradeTLS(received []byte) error {
	cfg := st.upgrade
	st.upgrade = nil
	st.s.switching = false
	st.queue.Pause()
	defer st.queue.Resume()
	raw := st.conn
	var under net.Conn = raw
	if len(received) > 0 {
		under = &prefixConn{Conn: raw, prefix: append([]byte(nil), received...)}
	}
	tc := tls.Server(under, cfg)
	raw.SetDeadline(time.Now().Add(st.s.srv.cfg.HandshakeTimeout))
	err := tc.Handshake()
	if st.s.closed.Load() == 0 {
		raw.SetDeadline(time.Time{})
	}
	if err != nil {
		return fmt.Errorf("starttls handshake: %w", err)
	}
	st.rw = tc
	st.queue.SetDirect(nil) // no non-blocking writes through TLS
	st.tlsConn.Store(tc)
	return nil
}

// prefixConn reads prefix before the connection's own bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
