package client_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/supersocket-go/supersocket/internal/testcert"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue("supersocket test", false)
	if err != nil {
		t.Fatal(err)
	}
	return c.TLS, ca.Pool
}

// tlsEchoServer echoes lines over TLS.
func tlsEchoServer(t *testing.T, cert tls.Certificate) string {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	return serveListener(t, ln, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
}

func TestTLS(t *testing.T) {
	cert, roots := selfSigned(t)
	addr := tlsEchoServer(t, cert)
	c := dial(t, client.Config{Addr: addr, Filter: filter.CommandLine(), TLS: &tls.Config{RootCAs: roots}})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 25 {
				want := fmt.Sprintf("ECHO over tls %d-%d", g, k)
				m, err := c.Request(testCtx(t), []byte(want+"\r\n"))
				if err != nil {
					t.Errorf("Request: %v", err)
					return
				}
				if got := strings.TrimSpace(string(m.Frame)); got != want {
					t.Errorf("reply %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTLSUntrusted(t *testing.T) {
	cert, _ := selfSigned(t)
	addr := tlsEchoServer(t, cert)
	_, err := client.Dial(testCtx(t), client.Config{
		Addr: addr, Filter: filter.CommandLine(), TLS: &tls.Config{RootCAs: x509.NewCertPool()}, Logger: quietLogger(),
	})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Dial to an untrusted server: %v", err)
	}
}
