package faults

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// TestTLSGarbage: on a TLS listener, garbage that looks like a ClientHello, plaintext
// commands, a ClientHello cut by an RST, a client that never says a word, and a client
// that rejects the server's certificate all fail their handshake: no session is created
// (Connected never runs, Closed never runs), each is counted in Stats.HandshakeFailures
// and its socket closed, and the live TLS sessions keep their round trips.
func TestTLSGarbage(t *testing.T) {
	base := takeBaseline(t)
	const handshakeTimeout = 500 * time.Millisecond
	n := 10 * scale()
	serverTLS, clientTLS := tlsPair(t)
	tally := newCloseTally()
	var connected atomic.Int64
	srv := startServer(t, supersocket.Config{
		Listeners:        []supersocket.ListenerConfig{{Addr: "127.0.0.1:0", TLS: &supersocket.TLSConfig{Config: serverTLS}}},
		Filter:           commandLine,
		HandshakeTimeout: handshakeTimeout,
	}, supersocket.Handlers[struct{}]{
		Connected: func(*session) { connected.Add(1) },
		Request:   lineHandler,
		Closed:    tally.closed,
	})
	addr := addrOf(srv)
	const live = 5
	probes := startProbers(t, live, "during", func() (echoer, error) { return dialTLSLine(addr, clientTLS) })
	eventually(t, "the live TLS sessions", func() bool { return connected.Load() == live })
	failures0 := srv.Stats().HandshakeFailures

	garbageHello := append([]byte{0x16, 0x03, 0x01, 0x00, 0x80, 0x01}, randomBytes(0x80-1, 9)...)
	cutHello := append([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}, randomBytes(90, 10)...)
	wrongName := clientTLS.Clone()
	wrongName.ServerName = "not-this-server.example"
	kinds := []struct {
		name string
		do   func() ([]byte, error) // returns what the server sent before closing
	}{
		{"garbage ClientHello", func() ([]byte, error) {
			c, err := net.DialTimeout("tcp", addr, waitLong)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			c.Write(garbageHello)
			return readAllUntilClose(c)
		}},
		{"plaintext command", func() ([]byte, error) {
			c, err := net.DialTimeout("tcp", addr, waitLong)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			c.Write([]byte("ECHO hello\r\n"))
			return readAllUntilClose(c)
		}},
		{"ClientHello cut by RST", func() ([]byte, error) {
			c, err := net.DialTimeout("tcp", addr, waitLong)
			if err != nil {
				return nil, err
			}
			c.Write(cutHello)
			return nil, rst(c)
		}},
		{"silent until the handshake timeout", func() ([]byte, error) {
			c, err := net.DialTimeout("tcp", addr, waitLong)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			return readAllUntilClose(c)
		}},
		{"client rejects the certificate", func() ([]byte, error) {
			c, err := net.DialTimeout("tcp", addr, waitLong)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			tc := tls.Client(c, wrongName)
			tc.SetDeadline(time.Now().Add(waitLong))
			if err := tc.Handshake(); err == nil {
				return nil, errUnexpectedHandshake
			}
			return nil, nil
		}},
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(kinds)*n)
	for _, k := range kinds {
		for range n {
			wg.Go(func() {
				got, err := k.do()
				switch {
				case err != nil:
					errs <- &kindError{k.name, err}
				case bytes.Contains(got, []byte("hello")):
					errs <- &kindError{k.name, errServed}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := uint64(len(kinds) * n)
	eventually(t, "every failed handshake to be counted", func() bool { return srv.Stats().HandshakeFailures-failures0 >= want })
	failed := srv.Stats().HandshakeFailures - failures0
	if failed != want {
		t.Errorf("HandshakeFailures grew by %d, want %d", failed, want)
	}
	if c := connected.Load(); c != live {
		t.Errorf("Connected ran %d times, want %d (only the live sessions)", c, live)
	}
	if _, closed := tally.snapshot(); closed != 0 {
		t.Errorf("Closed ran %d times during the garbage; no session should have existed", closed)
	}
	if s := srv.SessionCount(); s != live {
		t.Errorf("%d sessions, want the %d live ones", s, live)
	}
	lat := probes.check(t, time.Second)
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("TLS garbage: %d connections (%d each of %d kinds) → handshake failures counted %d, sessions created %d",
		len(kinds)*n, n, len(kinds), failed, connected.Load()-live)
	t.Logf("TLS garbage: live TLS clients lost %d, %v; goroutines left %d, fds left %d", probes.lostCount(), lat["during"], g, fds)
}

type kindError struct {
	kind string
	err  error
}

func (e *kindError) Error() string { return e.kind + ": " + e.err.Error() }

var (
	errUnexpectedHandshake = errors.New("a handshake with the wrong server name succeeded")
	errServed              = errors.New("the server answered a command sent in plaintext to its TLS port")
)
