// Package testcert makes throwaway certificates for tests, soak runs and demos: a CA that
// issues server certificates for localhost and 127.0.0.1 and client certificates, all
// ECDSA P-256, valid from an hour ago for a week. Never use them for anything real.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync/atomic"
	"time"
)

var serial atomic.Int64

// CA is a certificate authority made on the spot.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	Pool *x509.CertPool // trusts Cert
	PEM  []byte         // Cert, PEM-encoded
}

// Cert is an issued certificate, as a tls.Certificate and as PEM files' contents.
type Cert struct {
	TLS             tls.Certificate
	CertPEM, KeyPEM []byte
}

// NewCA makes a CA.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "supersocket test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, Pool: pool, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Issue makes a certificate named name: a server certificate for localhost and 127.0.0.1,
// or with client set, a client certificate.
func (ca *CA) Issue(name string, client bool) (Cert, error) {
	return ca.issue(name, client, []string{"localhost"})
}

// IssueFor makes a server certificate for the host names given (and 127.0.0.1): the
// certificates of SNI tests.
func (ca *CA) IssueFor(names ...string) (Cert, error) {
	return ca.issue(names[0], false, names)
}

func (ca *CA) issue(name string, client bool, dnsNames []string) (Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return Cert{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Cert{}, err
	}
	c := Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
	if c.TLS, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		return Cert{}, err
	}
	return c, nil
}

// Pair returns a server configuration with a fresh certificate for localhost and
// 127.0.0.1, and a client configuration that trusts its CA.
func Pair() (server, client *tls.Config, err error) {
	ca, err := NewCA()
	if err != nil {
		return nil, nil, err
	}
	c, err := ca.Issue("supersocket test server", false)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}}, &tls.Config{RootCAs: ca.Pool}, nil
}
