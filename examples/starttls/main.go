// Command starttls upgrades live plaintext sessions to TLS: STARTTLS, as in SMTP, IMAP or
// XMPP (SuperSocket's ResetSessionSecurity).
//
// A line protocol; a line ends at "\n" ("\r\n" works too):
//
//	WHOAMI     → OK plain <remote>                  before the upgrade
//	           → OK tls <version> <cipher> <remote> after it
//	STARTTLS   → OK begin TLS, then the client starts its TLS handshake on the same
//	             connection; ERR already TLS when it is
//	SECRET     → OK <secret> over TLS only; ERR STARTTLS first before
//	ECHO text  → text
//	QUIT       → BYE, then the server closes the connection
//
// The handler sends "OK begin TLS" and calls Session.StartTLS: the reply leaves in
// plaintext, then the server's side of the handshake runs before another byte is read,
// and every later request arrives decrypted. Bytes a client pipelines after STARTTLS are
// fed to the handshake, never read as plaintext commands, so nothing can be injected
// into the session before it is encrypted.
//
// The certificate comes from -cert and -key, or is a self-signed one made at startup for
// 127.0.0.1, ::1 and localhost (-write-ca saves it, for a client to trust).
//
//	go run ./examples/starttls -write-ca /tmp/starttls-ca.pem    # serve on 127.0.0.1:2013
//	go run ./examples/starttls -client -ca /tmp/starttls-ca.pem  # plain, upgrade, WHOAMI
//	nc 127.0.0.1 2013                                             # the plaintext half
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

const secret = "the cake is a lie"

// newServer returns the server, not started, listening on addr; STARTTLS upgrades with
// tlsCfg.
func newServer(addr string, tlsCfg *tls.Config) (*supersocket.Server[struct{}], error) {
	return supersocket.New(supersocket.Config{
		Name:             "starttls",
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           filter.CommandLine(),
		MaxRequestLength: 1024,
		HandshakeTimeout: 10 * time.Second, // bounds StartTLS's handshake too
		// StartTLS needs the goroutine engine: crypto/tls wants a net.Conn, which a session
		// of the epoll engine does not have.
		Engine: supersocket.EngineGoroutine,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
			request(s, req, tlsCfg)
		},
	})
}

func request(s *supersocket.Session[struct{}], req supersocket.Request, tlsCfg *tls.Config) {
	reply := func(line string) { s.Send([]byte(line + "\r\n")) }
	st := s.TLS() // nil until the upgrade
	switch strings.ToUpper(req.Key) {
	case "WHOAMI":
		if st == nil {
			reply("OK plain " + s.RemoteAddr().String())
			return
		}
		reply(fmt.Sprintf("OK tls %s %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), s.RemoteAddr()))
	case "STARTTLS":
		if st != nil {
			reply("ERR already TLS")
			return
		}
		reply("OK begin TLS") // queued before StartTLS: leaves in plaintext
		if err := s.StartTLS(tlsCfg); err != nil {
			s.Server().Config().Logger.Error("starttls refused", "session", s.ID(), "err", err)
			s.Close(supersocket.CloseInternalError)
		}
	case "SECRET":
		if st == nil {
			reply("ERR STARTTLS first")
			return
		}
		reply("OK " + secret)
	case "ECHO":
		reply(string(req.Body))
	case "QUIT":
		reply("BYE")
		s.Close(supersocket.CloseServerClosing)
	default:
		reply("ERR unknown command: " + req.Key)
	}
}

// selfSigned makes a certificate for the loopback addresses, valid for a day, and returns
// it with its PEM encoding.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "supersocket starttls example"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // its own CA, so that a client can trust it directly
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:2013", "address to listen on (with -client: the server's)")
	certFile := flag.String("cert", "", "PEM certificate chain (default: a self-signed certificate made at startup)")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	writeCA := flag.String("write-ca", "", "write the self-signed certificate to this file, for -client -ca")
	asClient := flag.Bool("client", false, "connect to -addr, ask WHOAMI, upgrade with STARTTLS, ask WHOAMI and SECRET")
	caFile := flag.String("ca", "", "with -client: PEM certificate to trust (default: trust any, for the demo only)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(code int, err error) {
		fmt.Fprintln(os.Stderr, "starttls:", err)
		os.Exit(code)
	}
	if *asClient {
		cfg := &tls.Config{}
		if *caFile == "" {
			fmt.Fprintln(os.Stderr, "starttls: no -ca given: the server's certificate is NOT verified")
			cfg.InsecureSkipVerify = true
		} else {
			pemBytes, err := os.ReadFile(*caFile)
			if err != nil {
				fail(2, err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pemBytes) {
				fail(2, fmt.Errorf("%s holds no PEM certificate", *caFile))
			}
		}
		if err := runClient(ctx, *addr, cfg, os.Stdout); err != nil {
			fail(1, err)
		}
		return
	}

	var cert tls.Certificate
	var err error
	switch {
	case *certFile != "" || *keyFile != "":
		if cert, err = tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
			fail(2, err)
		}
	default:
		var pemBytes []byte
		if cert, pemBytes, err = selfSigned(); err != nil {
			fail(1, err)
		}
		if *writeCA != "" {
			if err := os.WriteFile(*writeCA, pemBytes, 0o644); err != nil {
				fail(1, err)
			}
		}
	}
	srv, err := newServer(*addr, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		fail(2, err)
	}
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fail(1, err)
	}
}
