package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// lineConn is a raw client of the line protocol whose connection can be upgraded in
// place: the tests use it to send what a well-behaved client (runClient, on the client
// package) never would.
type lineConn struct {
	raw  net.Conn
	conn net.Conn // raw, or TLS over it
	r    *bufio.Reader
}

func dialLine(ctx context.Context, addr string) (*lineConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &lineConn{raw: c, conn: c, r: bufio.NewReader(c)}, nil
}

// do sends one line and returns the reply line, within 5 seconds.
func (c *lineConn) do(line string) (string, error) {
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return "", err
	}
	reply, err := c.r.ReadString('\n')
	return strings.TrimRight(reply, "\r\n"), err
}

// startTLS asks for the upgrade and runs the client's handshake over the same socket.
func (c *lineConn) startTLS(ctx context.Context, cfg *tls.Config) (tls.ConnectionState, error) {
	reply, err := c.do("STARTTLS")
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if reply != "OK begin TLS" {
		return tls.ConnectionState{}, fmt.Errorf("STARTTLS: %s", reply)
	}
	if c.r.Buffered() > 0 {
		// Plaintext after the go-ahead would be an attacker's: refuse it.
		return tls.ConnectionState{}, errors.New("STARTTLS: unexpected bytes after the reply")
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(c.raw.RemoteAddr().String())
	}
	tc := tls.Client(c.raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return tls.ConnectionState{}, err
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return tc.ConnectionState(), nil
}

func (c *lineConn) Close() error { return c.conn.Close() }
