package supersocket

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/testcert"
)

// testCA issues certificates for tests, made at test time (internal/testcert).
type testCA struct {
	*testcert.CA
	cert *x509.Certificate
	pool *x509.CertPool
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{CA: ca, cert: ca.Cert, pool: ca.Pool, pem: ca.PEM}
}

// issue returns a certificate for name (a server's for 127.0.0.1/localhost, or a
// client's), as a tls.Certificate and as PEM.
func (ca *testCA) issue(t *testing.T, name string, client bool) (tls.Certificate, []byte, []byte) {
	t.Helper()
	c, err := ca.Issue(name, client)
	if err != nil {
		t.Fatal(err)
	}
	return c.TLS, c.CertPEM, c.KeyPEM
}

// writeFiles writes a server certificate and key (and the CA, for client certificates)
// into dir and returns their paths.
func writeFiles(t *testing.T, dir string, certPEM, keyPEM, caPEM []byte) (cert, key, ca string) {
	t.Helper()
	cert, key, ca = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	for p, b := range map[string][]byte{cert: certPEM, key: keyPEM, ca: caPEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, ca
}

type tlsEvents struct {
	connected atomic.Int32
	identity  chan string // the client certificate's CN seen by the server, "" for none
}

// tlsEchoServer serves an ECHO-style line server over TLS with spec.
func tlsEchoServer(t *testing.T, cfg Config, spec TLSConfig) (*Server[struct{}], *tlsEvents) {
	t.Helper()
	ev := &tlsEvents{identity: make(chan string, 16)}
	cfg.Listeners = []ListenerConfig{{Addr: "127.0.0.1:0", TLS: &spec}}
	cfg.Filter = filter.CommandLine()
	srv := startServer(t, cfg, Handlers[struct{}]{
		Connected: func(s *Session[struct{}]) {
			ev.connected.Add(1)
			st := s.TLS()
			switch {
			case st == nil:
				ev.identity <- "<no tls>"
			case len(st.VerifiedChains) > 0:
				ev.identity <- st.VerifiedChains[0][0].Subject.CommonName
			default:
				ev.identity <- ""
			}
		},
		Request: func(s *Session[struct{}], r Request) { s.Send(r.Body, []byte("\r\n")) },
	})
	return srv, ev
}

func tlsRoundTrip(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	d := &net.Dialer{Timeout: waitLong}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c, "ECHO over tls\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "over tls\r\n" {
		t.Fatalf("tls echo: %q", line)
	}
	return nil
}

func TestTLSListenerFromFiles(t *testing.T) {
	ca := newTestCA(t)
	_, certPEM, keyPEM := ca.issue(t, "server", false)
	cert, key, _ := writeFiles(t, t.TempDir(), certPEM, keyPEM, ca.pem)
	srv, ev := tlsEchoServer(t, Config{}, TLSConfig{CertFile: cert, KeyFile: key})
	if err := tlsRoundTrip(t, addrOf(srv), &tls.Config{RootCAs: ca.pool}); err != nil {
		t.Fatal(err)
	}
	if id := recvWithin(t, ev.identity, "Connected"); id != "" {
		t.Fatalf("identity %q without a client certificate", id)
	}
	// TLS 1.2 is the floor by default: a TLS 1.1 client gets no session.
	err := tlsRoundTrip(t, addrOf(srv), &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	waitUntil(t, "handshake failure counted", func() bool { return srv.Stats().HandshakeFailures == 1 })
	if n := ev.connected.Load(); n != 1 {
		t.Fatalf("Connected ran %d times; a failed handshake must create no session", n)
	}
}

// waitUntil polls cond every few milliseconds until it holds, failing after waitLong. It
// is for state that has no event to wait on (counters).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTLSMutualRequiredAndOptional(t *testing.T) {
	ca := newTestCA(t)
	_, certPEM, keyPEM := ca.issue(t, "server", false)
	clientCert, _, _ := ca.issue(t, "player-42", true)
	cert, key, caFile := writeFiles(t, t.TempDir(), certPEM, keyPEM, ca.pem)

	required, ev := tlsEchoServer(t, Config{}, TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: caFile})
	if err := tlsRoundTrip(t, addrOf(required), &tls.Config{RootCAs: ca.pool}); err == nil {
		t.Fatal("mTLS served a client without a certificate")
	}
	other := newTestCA(t)
	strangerCert, _, _ := other.issue(t, "stranger", true)
	if err := tlsRoundTrip(t, addrOf(required), &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{strangerCert}}); err == nil {
		t.Fatal("mTLS served a client whose certificate another CA signed")
	}
	if err := tlsRoundTrip(t, addrOf(required), &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{clientCert}}); err != nil {
		t.Fatal(err)
	}
	if id := recvWithin(t, ev.identity, "Connected"); id != "player-42" {
		t.Fatalf("verified identity %q, want player-42", id)
	}
	if n := ev.connected.Load(); n != 1 {
		t.Fatalf("%d sessions, want only the one with a certificate", n)
	}

	optional, ev2 := tlsEchoServer(t, Config{}, TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: caFile, ClientAuth: ClientCertOptional})
	if err := tlsRoundTrip(t, addrOf(optional), &tls.Config{RootCAs: ca.pool}); err != nil {
		t.Fatalf("optional mTLS refused a client without a certificate: %v", err)
	}
	if id := recvWithin(t, ev2.identity, "Connected"); id != "" {
		t.Fatalf("identity %q without a certificate", id)
	}
	if err := tlsRoundTrip(t, addrOf(optional), &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{clientCert}}); err != nil {
		t.Fatal(err)
	}
	if id := recvWithin(t, ev2.identity, "Connected"); id != "player-42" {
		t.Fatalf("identity %q, want player-42", id)
	}
}

// TestTLSGarbageAndPlaintextCreateNoSession: plaintext and a garbage ClientHello on a TLS
// port fail the handshake, create no session, and leave a live TLS session unharmed.
func TestTLSGarbageAndPlaintextCreateNoSession(t *testing.T) {
	ca := newTestCA(t)
	pair, _, _ := ca.issue(t, "server", false)
	srv, ev := tlsEchoServer(t, Config{}, TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{pair}}})
	good, err := tls.Dial("tcp", addrOf(srv), &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	recvWithin(t, ev.identity, "Connected")
	for _, junk := range []string{
		"ECHO plaintext\r\n",
		"\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff", // a handshake record holding nonsense
		strings.Repeat("\x00", 300),
	} {
		c, err := net.Dial("tcp", addrOf(srv))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(waitLong))
		io.WriteString(c, junk)
		io.Copy(io.Discard, c) // the server answers with an alert at most, then closes
		c.Close()
	}
	waitUntil(t, "three handshake failures", func() bool { return srv.Stats().HandshakeFailures == 3 })
	if n := ev.connected.Load(); n != 1 {
		t.Fatalf("%d sessions; junk must create none", n)
	}
	good.SetDeadline(time.Now().Add(waitLong))
	io.WriteString(good, "ECHO still here\r\n")
	if line, err := bufio.NewReader(good).ReadString('\n'); err != nil || line != "still here\r\n" {
		t.Fatalf("live TLS session: %q %v", line, err)
	}
}

// TestTLSHandshakeOffTheAcceptPath: clients that open a TLS port and never say hello do
// not delay others, and are cut at HandshakeTimeout.
func TestTLSHandshakeOffTheAcceptPath(t *testing.T) {
	ca := newTestCA(t)
	pair, _, _ := ca.issue(t, "server", false)
	srv, _ := tlsEchoServer(t, Config{HandshakeTimeout: 300 * time.Millisecond},
		TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{pair}}})
	var silent []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", addrOf(srv))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	if err := tlsRoundTrip(t, addrOf(srv), &tls.Config{RootCAs: ca.pool}); err != nil {
		t.Fatalf("a real client behind 20 silent ones: %v", err)
	}
	for _, c := range silent {
		c.SetReadDeadline(time.Now().Add(waitLong))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("silent client not cut off at the handshake timeout: %v", err)
		}
	}
	waitUntil(t, "20 handshake failures", func() bool { return srv.Stats().HandshakeFailures == 20 })
	if n := srv.SessionCount(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

func TestTLSReloadWithoutRestart(t *testing.T) {
	ca := newTestCA(t)
	_, certA, keyA := ca.issue(t, "first", false)
	_, certB, keyB := ca.issue(t, "second", false)
	dir := t.TempDir()
	cert, key, _ := writeFiles(t, dir, certA, keyA, ca.pem)
	srv, _ := tlsEchoServer(t, Config{}, TLSConfig{CertFile: cert, KeyFile: key})
	servedCN := func() string {
		c, err := tls.Dial("tcp", addrOf(srv), &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := servedCN(); cn != "first" {
		t.Fatalf("served %q", cn)
	}
	writeFiles(t, dir, certB, keyB, ca.pem)
	if err := srv.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(); cn != "second" {
		t.Fatalf("after reload served %q, want second", cn)
	}
	// A broken file keeps the current certificate.
	os.WriteFile(cert, []byte("not pem"), 0o600)
	if err := srv.ReloadTLS(); err == nil {
		t.Fatal("reload of a broken certificate succeeded")
	}
	if cn := servedCN(); cn != "second" {
		t.Fatalf("after a failed reload served %q", cn)
	}
}

func TestTLSConfigErrorsNameTheField(t *testing.T) {
	h := Handlers[struct{}]{Request: func(*Session[struct{}], Request) {}}
	for _, tc := range []struct {
		spec  TLSConfig
		field string
	}{
		{TLSConfig{}, "Listeners[0].TLS"},
		{TLSConfig{CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"}, "Listeners[0].TLS.CertFile"},
		{TLSConfig{CertFile: "x.pem"}, "Listeners[0].TLS"},
		{TLSConfig{Config: &tls.Config{}, ClientAuth: ClientCertRequired}, "Listeners[0].TLS.ClientCAFile"},
	} {
		_, err := New(Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0", TLS: &tc.spec}}}, h)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want a ConfigError on %s", tc.spec, err, tc.field)
		}
	}
	_, err := New(Config{Listeners: []ListenerConfig{{Network: "udp", Addr: "127.0.0.1:0", TLS: &TLSConfig{}}}}, h)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Listeners[0].TLS" {
		t.Errorf("TLS on UDP: %v", err)
	}
}

// TestStartTLSUpgradesALiveSession is SuperSocket's ResetSessionSecurity: a plaintext
// session answers STARTTLS, upgrades, and carries on encrypted.
func TestStartTLSUpgradesALiveSession(t *testing.T) {
	// Once right away, and once from a session that had parked (idle past parkAfter) first.
	for _, parkFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("parkFirst=%v", parkFirst), func(t *testing.T) { testStartTLS(t, parkFirst) })
	}
}

func testStartTLS(t *testing.T, parkFirst bool) {
	ca := newTestCA(t)
	pair, _, _ := ca.issue(t, "server", false)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{pair}}
	// StartTLS needs the goroutine engine (TestStartTLSRefusedOnEpoll).
	srv := startServer(t, Config{Filter: filter.CommandLine(), Engine: EngineGoroutine}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			switch r.Key {
			case "STARTTLS":
				s.Send([]byte("GO\r\n"))
				if err := s.StartTLS(serverTLS); err != nil {
					s.Send([]byte("ERR " + err.Error() + "\r\n"))
				}
			case "WHO":
				if st := s.TLS(); st != nil {
					s.Send([]byte("tls\r\n"))
				} else {
					s.Send([]byte("plain\r\n"))
				}
			}
		},
	})
	c, err := net.Dial("tcp", addrOf(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLong))
	r := bufio.NewReader(c)
	expect := func(want string) {
		t.Helper()
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("got %q %v, want %q", line, err, want)
		}
	}
	if parkFirst {
		io.WriteString(c, "WHO\r\n")
		expect("plain\r\n")
		waitIdle(t, srv, 1)
		io.WriteString(c, "STARTTLS\r\n")
	} else {
		io.WriteString(c, "WHO\r\nSTARTTLS\r\n")
		expect("plain\r\n")
	}
	expect("GO\r\n")
	tc := tls.Client(c, &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tc, "WHO\r\nSTARTTLS\r\n")
	tr := bufio.NewReader(tc)
	for _, want := range []string{"tls\r\n", "GO\r\n"} {
		if line, err := tr.ReadString('\n'); err != nil || !strings.HasPrefix(line, strings.TrimSpace(want)) {
			t.Fatalf("over tls: got %q %v, want %q", line, err, want)
		}
	}
	if line, _ := tr.ReadString('\n'); !strings.HasPrefix(line, "ERR") {
		t.Fatalf("a second STARTTLS: got %q, want an error", line)
	}
}

// TestShutdownDuringHandshakes: a stop does not wait out HandshakeTimeout for clients in
// the middle of a handshake.
func TestShutdownDuringHandshakes(t *testing.T) {
	ca := newTestCA(t)
	pair, _, _ := ca.issue(t, "server", false)
	srv, _ := tlsEchoServer(t, Config{HandshakeTimeout: time.Minute},
		TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{pair}}})
	for range 5 {
		c, err := net.Dial("tcp", addrOf(srv))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if el := time.Since(start); el > waitLong/2 {
		t.Fatalf("Shutdown took %v with handshakes pending", el)
	}
}
