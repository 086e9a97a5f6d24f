package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/supersocket-go/supersocket/internal/testcert"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// TestServeOnePort: a config file's listener with detect: true, tls and proxy serves the
// raw protocol, TLS and WebSocket (plain and inside TLS) on one port, each behind a
// PROXY header from the trusted load balancer (127.0.0.1) or without one (optional).
func TestServeOnePort(t *testing.T) {
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueFor("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server.crt"), cert.CertPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "server.key"), cert.KeyPEM, 0o600)
	path := filepath.Join(dir, "servers.yaml")
	os.WriteFile(path, []byte(`servers:
  - app: commandline
    listeners:
      - addr: 127.0.0.1:0
        detect: true
        path: /ws
        tls:
          cert_file: server.crt
          key_file: server.key
        proxy:
          trusted_from: [127.0.0.0/8]
          optional: true
`), 0o600)
	addr, _ := start(t, "serve", "-config", path)
	tlsCfg := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
	for _, proxied := range []bool{false, true} {
		for _, kind := range []string{"raw", "tls", "ws", "wss"} {
			t.Run(fmt.Sprintf("%s/proxy=%v", kind, proxied), func(t *testing.T) {
				c := dial(t, addr)
				if proxied {
					io.WriteString(c, "PROXY TCP4 192.0.2.1 127.0.0.1 56324 2012\r\n")
				}
				if strings.HasSuffix(kind, "ss") || kind == "tls" {
					tc := tls.Client(c, tlsCfg)
					if err := tc.Handshake(); err != nil {
						t.Fatal(err)
					}
					c = tc
				}
				if kind == "raw" || kind == "tls" {
					io.WriteString(c, "ADD 40 2\r\n")
					if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "42\r\n" {
						t.Fatalf("ADD 40 2: %q, %v", line, err)
					}
					return
				}
				r := wsUpgrade(t, c, "/ws", "")
				wsSend(t, c, websocket.OpText, []byte("ADD 40 2"))
				if op, msg := wsRecv(t, r); op != websocket.OpText || msg != "42" {
					t.Fatalf("ADD 40 2 → %v %q", op, msg)
				}
			})
		}
	}
}
