package supersocket

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestTLSCertificateBySNI: several certificate pairs on one listener; a client's server
// name picks the pair that covers it, and one without a known name gets the first. ALPN
// picks the first of the listener's protocols the client offers.
func TestTLSCertificateBySNI(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	files := func(names ...string) CertKeyFiles {
		c, err := ca.IssueFor(names...)
		if err != nil {
			t.Fatal(err)
		}
		p := CertKeyFiles{CertFile: filepath.Join(dir, names[0]+".pem"), KeyFile: filepath.Join(dir, names[0]+".key")}
		os.WriteFile(p.CertFile, c.CertPEM, 0o600)
		os.WriteFile(p.KeyFile, c.KeyPEM, 0o600)
		return p
	}
	def := files("default.example")
	spec := TLSConfig{CertFile: def.CertFile, KeyFile: def.KeyFile,
		Certificates: []CertKeyFiles{files("a.example"), files("b.example", "*.b.example")},
		NextProtos:   []string{"game/2", "game/1"}}
	alpn := make(chan string, 8)
	srv := startServer(t, Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0", TLS: &spec}}}, Handlers[struct{}]{
		Connected: func(s *Session[struct{}]) { alpn <- s.TLS().NegotiatedProtocol },
		Request:   echoFrame[struct{}],
	})
	for _, tt := range []struct{ sni, want string }{
		{"a.example", "a.example"}, {"b.example", "b.example"}, {"x.b.example", "b.example"},
		{"default.example", "default.example"}, {"other.example", "default.example"}, {"", "default.example"},
	} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLong}, "tcp", addrOf(srv), &tls.Config{
			ServerName: tt.sni, InsecureSkipVerify: true, NextProtos: []string{"game/1", "other"}})
		if err != nil {
			t.Fatalf("SNI %q: %v", tt.sni, err)
		}
		cs := c.ConnectionState()
		c.Close()
		if got := cs.PeerCertificates[0].Subject.CommonName; got != tt.want {
			t.Errorf("SNI %q got the certificate of %s, want %s", tt.sni, got, tt.want)
		}
		if cs.NegotiatedProtocol != "game/1" || recv(t, alpn, "the session") != "game/1" {
			t.Errorf("ALPN: client %q", cs.NegotiatedProtocol)
		}
	}
	if err := srv.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	os.Remove(spec.Certificates[0].KeyFile)
	if err := srv.ReloadTLS(); err == nil {
		t.Fatal("a reload with a missing key file succeeded")
	}
}

func TestTLSCertificatesConfigErrors(t *testing.T) {
	expectConfigError(t, ListenerConfig{Addr: "127.0.0.1:0", TLS: &TLSConfig{Certificates: []CertKeyFiles{{CertFile: "x.pem"}}}}, "Listeners[0].TLS.Certificates[0]")
	expectConfigError(t, ListenerConfig{Addr: "127.0.0.1:0", TLS: &TLSConfig{Certificates: []CertKeyFiles{{CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}}}}, "Listeners[0].TLS.Certificates[0]")
}
