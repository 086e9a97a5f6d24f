package faults

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// TestDataIntegrity: a server sends many MiB of pseudo-random data in many Sends of
// random sizes (some of them multi-part), then closes the session gracefully with
// Close(CloseServerClosing). The client reads to EOF: every byte Send accepted arrives,
// in order (SHA-256 of what was accepted = SHA-256 of what was read), none lost.
//
// "queued at close": the queue holds the whole stream and the client starts reading only
// once Close was called, so nearly all of it is flushed after Close. "streaming": the
// default queue, the client reading all along, so Sends wait for room.
func TestDataIntegrity(t *testing.T) {
	for _, tc := range []struct {
		name          string
		tls           bool
		size          int
		queuedAtClose bool
	}{
		{"tcp/queued-at-close", false, 32 << 20, true},
		{"tcp/streaming", false, 32 << 20, false},
		{"tls/queued-at-close", true, 16 << 20, true},
		{"tls/streaming", true, 16 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) { integrity(t, tc.tls, tc.size*scale(), tc.queuedAtClose) })
	}
}

type integrityResult struct {
	sends              int
	accepted, rejected int64
	pendingAtClose     int64 // accepted but not yet written when Close was called
	sum                [sha256.Size]byte
}

func integrity(t *testing.T, useTLS bool, size int, queuedAtClose bool) {
	base := takeBaseline(t)
	payload := randomBytes(size, 42)
	results := make(chan integrityResult, 1)
	closed := make(chan supersocket.CloseReason, 1)
	cfg := supersocket.Config{
		Filter:        commandLine,
		SendTimeout:   30 * time.Second,
		CloseLinger:   30 * time.Second,
		SendQueueSize: 1 << 16,
	}
	if queuedAtClose {
		cfg.SendQueueBytes = size + 1<<20
	}
	var clientTLS *tls.Config
	if useTLS {
		var serverTLS *tls.Config
		serverTLS, clientTLS = tlsPair(t)
		cfg.Listeners = []supersocket.ListenerConfig{{Addr: "127.0.0.1:0", TLS: &supersocket.TLSConfig{Config: serverTLS}}}
	}
	srv := startServer(t, cfg, supersocket.Handlers[struct{}]{
		Request: func(s *session, req supersocket.Request) {
			if req.Key != "SEND" {
				return
			}
			out0 := s.Server().Stats().BytesOut
			var r integrityResult
			h := sha256.New()
			rng := rand.New(rand.NewPCG(1, 2))
			for off := 0; off < size; r.sends++ {
				n := min(1+rng.IntN(64<<10), size-off)
				msg := payload[off : off+n]
				var err error
				if r.sends%3 == 2 && n > 1 {
					err = s.Send(msg[:n/2], msg[n/2:])
				} else {
					err = s.Send(msg)
				}
				if err == nil {
					h.Write(msg)
					r.accepted += int64(n)
				} else {
					r.rejected += int64(n)
				}
				off += n
			}
			r.pendingAtClose = r.accepted - int64(s.Server().Stats().BytesOut-out0)
			s.Close(supersocket.CloseServerClosing)
			h.Sum(r.sum[:0])
			results <- r
		},
		Closed: func(_ *session, why supersocket.CloseReason) { closed <- why },
	})
	addr := addrOf(srv)

	var c net.Conn
	var err error
	if useTLS {
		c, err = (&tls.Dialer{NetDialer: &net.Dialer{Timeout: waitLong}, Config: clientTLS}).Dial("tcp", addr)
	} else {
		c, err = net.DialTimeout("tcp", addr, waitLong)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte("SEND\r\n")); err != nil {
		t.Fatal(err)
	}
	var r integrityResult
	if queuedAtClose {
		r = recv(t, results, "the server to queue everything and Close")
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	h := sha256.New()
	received, err := io.Copy(h, c)
	if err != nil {
		t.Fatalf("reading to EOF: %v after %d bytes", err, received)
	}
	elapsed := time.Since(start)
	if !queuedAtClose {
		r = recv(t, results, "the server's result")
	}
	why := recv(t, closed, "the Closed event")
	c.Close()
	srv.Stop()
	g, fds := base.left(t)

	if r.rejected != 0 {
		t.Errorf("Send refused %d bytes", r.rejected)
	}
	if received != r.accepted {
		t.Errorf("received %d bytes, Send accepted %d", received, r.accepted)
	}
	if sum := h.Sum(nil); !bytes.Equal(sum, r.sum[:]) {
		t.Errorf("SHA-256 of the bytes received %x, of the bytes accepted %x", sum, r.sum)
	}
	if why != supersocket.CloseServerClosing {
		t.Errorf("session closed with %v, want ServerClosing", why)
	}
	if queuedAtClose && r.pendingAtClose <= 0 {
		t.Errorf("nothing was pending at Close: the flush on close was not exercised")
	}
	lost := r.accepted - received
	t.Logf("integrity %s, %s: %d Sends accepted %s (refused %d B); %s still queued or in flight at Close; received %s in %v; lost %d B; SHA-256 match %v; close %v; goroutines left %d, fds left %d",
		map[bool]string{false: "tcp", true: "tls"}[useTLS], map[bool]string{false: "streaming", true: "queued at close"}[queuedAtClose],
		r.sends, mib(uint64(r.accepted)), r.rejected, mib(uint64(max(r.pendingAtClose, 0))), mib(uint64(received)),
		elapsed.Round(time.Millisecond), lost, bytes.Equal(h.Sum(nil), r.sum[:]), why, g, fds)
}
