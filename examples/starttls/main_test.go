package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs the server with a fresh self-signed certificate and returns a client TLS
// configuration that trusts it.
func start(t *testing.T) (*supersocket.Server[struct{}], string, *tls.Config) {
	t.Helper()
	cert, _, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, srv) })
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	return srv, srv.Addrs()[0].String(), &tls.Config{RootCAs: roots}
}

func shutdown(t *testing.T, srv *supersocket.Server[struct{}]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func dialT(t *testing.T, addr string) *lineConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialLine(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (c *lineConn) expect(t *testing.T, line, want string) {
	t.Helper()
	got, err := c.do(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if got != want {
		t.Fatalf("%s: got %q, want %q", line, got, want)
	}
}

// TestUpgrade upgrades a live session, verifying the server's certificate, and checks
// that the server sees the TLS state the client negotiated.
func TestUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  uint16
	}{{"TLS 1.3", 0}, {"TLS 1.2", tls.VersionTLS12}} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr, cfg := start(t)
			cfg.MaxVersion = tc.max
			c := dialT(t, addr)
			me := c.raw.LocalAddr().String()
			c.expect(t, "WHOAMI", "OK plain "+me)
			c.expect(t, "SECRET", "ERR STARTTLS first")
			c.expect(t, "ECHO before", "before")

			st, err := c.startTLS(context.Background(), cfg) // verifies the certificate for 127.0.0.1
			if err != nil {
				t.Fatal(err)
			}
			if tls.VersionName(st.Version) != tc.name {
				t.Errorf("negotiated %s", tls.VersionName(st.Version))
			}
			c.expect(t, "WHOAMI", fmt.Sprintf("OK tls %s %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), me))
			c.expect(t, "SECRET", "OK "+secret)
			c.expect(t, "ECHO after", "after")
			c.expect(t, "STARTTLS", "ERR already TLS")
			c.expect(t, "QUIT", "BYE")
			if n, err := c.r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("after BYE: %d bytes, %v; want the server to close", n, err)
			}
		})
	}
}

// TestNoPlaintextInjection: a command pipelined behind STARTTLS, in plaintext, is taken
// as the start of the handshake, which fails; it is never executed.
func TestNoPlaintextInjection(t *testing.T) {
	srv, addr, _ := start(t)
	c := dialT(t, addr)
	c.raw.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.raw, "STARTTLS\r\nSECRET\r\n"); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c.r) // until the server closes
	if err != nil {
		t.Fatal(err)
	}
	got, after, _ := bytes.Cut(rest, []byte("\r\n"))
	if string(got) != "OK begin TLS" {
		t.Fatalf("first reply %q", got)
	}
	// What follows, if anything, is a TLS alert: not a plaintext reply.
	if bytes.Contains(after, []byte("OK")) || bytes.Contains(after, []byte("ERR")) {
		t.Errorf("plaintext after STARTTLS: %q", after)
	}
	shutdown(t, srv)
	if n := srv.Stats().Closes[supersocket.CloseSocketError]; n != 1 {
		t.Errorf("SocketError closes = %d, want 1 (the failed handshake)", n)
	}
}

// TestUntrustedCertificate: a client that does not trust the certificate aborts the
// handshake; the server closes the session with SocketError.
func TestUntrustedCertificate(t *testing.T) {
	srv, addr, _ := start(t)
	c := dialT(t, addr)
	_, err := c.startTLS(context.Background(), &tls.Config{}) // system roots only
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("handshake with an untrusted certificate: %v", err)
	}
	// The client's alert fails the server's handshake, and the server closes.
	c.raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c.raw); err != nil {
		t.Fatalf("waiting for the server to close: %v", err)
	}
	shutdown(t, srv)
	if n := srv.Stats().Closes[supersocket.CloseSocketError]; n != 1 {
		t.Errorf("SocketError closes = %d, want 1 (the failed handshake)", n)
	}
}

func TestRunClient(t *testing.T) {
	_, addr, cfg := start(t)
	var out bytes.Buffer
	if err := runClient(context.Background(), addr, cfg, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"WHOAMI   → OK plain ", "SECRET   → ERR STARTTLS first", "STARTTLS → TLS 1.3 ", "WHOAMI   → OK tls TLS 1.3 ", "SECRET   → OK " + secret, "QUIT     → BYE"}
	if len(lines) != len(want) {
		t.Fatalf("client printed %q", out.String())
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) {
			t.Errorf("line %d: %q, want it to start %q", i, l, want[i])
		}
	}
}
