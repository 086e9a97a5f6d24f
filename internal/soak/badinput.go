package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// badInput sends, every -bad-every, one kind of input the servers must cut off, and
// checks that they do.
func (r *runner) badInput(ctx context.Context, wg *sync.WaitGroup) {
	tick := time.NewTicker(r.o.badEvery)
	defer tick.Stop()
	long := append(bytes.Repeat([]byte("x"), 2048), '\r', '\n') // over MaxRequestLength 1024
	for n := 0; pace(ctx, tick); n++ {
		kind := n % 5
		wg.Go(func() {
			r.badSent.Add(1)
			var err error
			switch kind {
			case 0: // a line over the limit: closed (ProtocolError)
				err = expectCut(r.lineAddr, long, "")
			case 1: // plaintext to the TLS port: no session (handshake failure)
				err = expectCut(r.tlsAddr, []byte("ECHO plaintext\r\n"), "plaintext")
			case 2: // an RST in the middle of a line
				var c net.Conn
				if c, err = net.DialTimeout("tcp", r.lineAddr, 10*time.Second); err == nil {
					c.Write([]byte("ECHO half a li"))
					c.(*net.TCPConn).SetLinger(0)
					err = c.Close()
				}
			case 4: // an upgrade, then an unmasked frame: ProtocolError, close code 1002
				upgrade := "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
					"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n\r\n"
				err = expectCutAfter(r.wsAddr, []byte(upgrade+"\x81\x06ECHO x"), "\x88\x02\x03\xea")
			case 3: // a UDP packet whose totalSize is below the header: ProtocolError
				var c net.Conn
				if c, err = net.Dial("udp", r.udpAddr); err == nil {
					_, err = c.Write([]byte{2, 0, 1, 0, 0})
					c.Close()
				}
			}
			if err != nil {
				r.errs.addWhileLoading(ctx, "bad input", err)
				return
			}
			r.badClosed.Add(1)
		})
	}
}

// expectCutAfter sends b to addr and expects the server to close the connection after
// sending, at the end of what it sent, ending (a WebSocket close frame).
func expectCutAfter(addr string, b []byte, ending string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: the server did not cut off %q", addr, b[:min(len(b), 16)])
	}
	if !bytes.HasSuffix(got, []byte(ending)) {
		return fmt.Errorf("%s: the server ended with %q, want %q", addr, got[max(0, len(got)-16):], ending)
	}
	return nil
}

// expectCut sends b to addr and expects the server to close the connection without
// sending anything that contains mustNot (or anything at all, when mustNot is empty).
func expectCut(addr string, b []byte, mustNot string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: the server did not cut off %q", addr, b[:min(len(b), 16)])
	}
	// The broadcaster reaches every commandline session, this one too, in the moment
	// between its accept and its cut: a NEWS line is not an answer to the bad input.
	got = withoutBroadcasts(got)
	if mustNot == "" && len(got) > 0 || mustNot != "" && bytes.Contains(got, []byte(mustNot)) {
		return fmt.Errorf("%s: the server answered %q to bad input", addr, got)
	}
	return nil // EOF or a reset: cut off
}

// withoutBroadcasts returns b without its whole "NEWS …\r\n" lines.
func withoutBroadcasts(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		line := b
		if i := bytes.Index(b, []byte("\r\n")); i >= 0 {
			line = b[:i+2]
		}
		b = b[len(line):]
		if !bytes.HasPrefix(line, []byte("NEWS ")) || !bytes.HasSuffix(line, []byte("\r\n")) {
			out = append(out, line...)
		}
	}
	return out
}
