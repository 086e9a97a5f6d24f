package faults

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/proxyproto"
)

// TestProxyBadHeaders: on PROXY listeners, headers that are truncated (then FIN, or then
// silence), oversized (version 1 without its end, version 2 declaring more than the
// limit), without the signature, version 2 headers with bad lengths, families or TLVs,
// a header after data, and a header from an untrusted peer each close only their own
// connection, before a session exists (Connected and Closed never run; the failures are
// counted in Stats.HandshakeFailures, and an untrusted peer on a refusing listener in
// Stats.Refused), while clients behind the proxy keep their round trips.
func TestProxyBadHeaders(t *testing.T) {
	base := takeBaseline(t)
	const headerTimeout = 300 * time.Millisecond
	n := 10 * scale()
	trusted := &supersocket.ProxyConfig{TrustedFrom: []string{"127.0.0.1"}, HeaderTimeout: headerTimeout}
	direct := &supersocket.ProxyConfig{TrustedFrom: []string{"10.0.0.0/8"}, Untrusted: supersocket.ProxyServeDirect, HeaderTimeout: headerTimeout}
	refuse := &supersocket.ProxyConfig{TrustedFrom: []string{"10.0.0.0/8"}}
	tally := newCloseTally()
	var connected atomic.Int64
	srv := startServer(t, supersocket.Config{
		Listeners: []supersocket.ListenerConfig{
			{Addr: "127.0.0.1:0", Proxy: trusted},
			{Addr: "127.0.0.1:0", Proxy: direct},
			{Addr: "127.0.0.1:0", Proxy: refuse},
		},
		Filter: commandLine,
	}, supersocket.Handlers[struct{}]{
		Connected: func(*session) { connected.Add(1) },
		Request:   lineHandler,
		Closed:    tally.closed,
	})
	addrs := srv.Addrs()
	proxied, direct0, refusing := addrs[0].String(), addrs[1].String(), addrs[2].String()
	const live = 5
	probes := startProbers(t, live, "during", func() (echoer, error) {
		c, err := dialLine(proxied)
		if err == nil {
			_, err = c.Write([]byte(v1("127.0.0.2:7000")))
		}
		return c, err
	})
	eventually(t, "the live proxied sessions", func() bool { return connected.Load() == live })
	failures0, refused0 := srv.Stats().HandshakeFailures, srv.Stats().Refused

	hello := []byte("ECHO hello\r\n")
	header := v1("127.0.0.2:1")
	good2 := v2(0x21, 0x11, 12, ip4s("127.0.0.2", "127.0.0.1", 1, 2))
	kinds := []struct {
		name  string
		addr  string
		send  []byte
		quiet bool // stay silent after sending (else half-close)
		cut   bool // a truncated header: nothing follows it
	}{
		{"v1 truncated, then FIN", proxied, []byte(header[:20]), false, true},
		{"v1 truncated, then silence", proxied, []byte(header[:20]), true, true},
		{"v2 truncated, then FIN", proxied, good2[:20], false, true},
		{"v2 truncated, then silence", proxied, good2[:len(good2)-3], true, true},
		{"v1 oversized", proxied, append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("x"), 4096)...), false, false},
		{"v2 oversized", proxied, append(v2(0x21, 0x11, 0xFFFF, nil), make([]byte, 64<<10)...), false, false},
		{"wrong signature", proxied, []byte(strings.Replace(header, "PROXY", "PROXZ", 1)), false, false},
		{"v2 wrong version", proxied, v2(0x11, 0x11, 12, ip4s("127.0.0.2", "127.0.0.1", 1, 2)), false, false},
		{"v2 length short of its addresses", proxied, v2(0x21, 0x11, 8, ip4s("127.0.0.2", "127.0.0.1", 1, 2)[:8]), false, false},
		{"v2 family 4", proxied, v2(0x21, 0x41, 12, ip4s("127.0.0.2", "127.0.0.1", 1, 2)), false, false},
		{"v2 datagram on a stream", proxied, v2(0x21, 0x12, 12, ip4s("127.0.0.2", "127.0.0.1", 1, 2)), false, false},
		{"v2 TLV past its end", proxied, v2(0x21, 0x11, 17, append(ip4s("127.0.0.2", "127.0.0.1", 1, 2), 0x01, 0x00, 0x09, 'h', '2')), false, false},
		{"data, then a header", proxied, append(append([]byte(nil), hello...), header...), false, false},
		{"untrusted peer's header", direct0, []byte(header), false, false},
	}
	var wg sync.WaitGroup
	errs := make(chan error, (len(kinds)+1)*n)
	for _, k := range kinds {
		for range n {
			wg.Go(func() {
				b := append([]byte(nil), k.send...)
				if !k.cut {
					b = append(b, hello...)
				}
				got, err := badHeader(k.addr, b, k.quiet)
				switch {
				case err != nil:
					errs <- &kindError{k.name, err}
				case bytes.Contains(got, []byte("hello")):
					errs <- &kindError{k.name, errServedProxy}
				}
			})
		}
	}
	for range n {
		wg.Go(func() {
			got, err := badHeader(refusing, append([]byte(header), hello...), false)
			switch {
			case err != nil:
				errs <- &kindError{"untrusted peer, refusing listener", err}
			case len(got) > 0:
				errs <- &kindError{"untrusted peer, refusing listener", errServedProxy}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := uint64(len(kinds) * n)
	eventually(t, "every bad header to be counted", func() bool {
		st := srv.Stats()
		return st.HandshakeFailures-failures0 >= want && st.Refused-refused0 >= uint64(n)
	})
	st := srv.Stats()
	if failed, refused := st.HandshakeFailures-failures0, st.Refused-refused0; failed != want || refused != uint64(n) {
		t.Errorf("HandshakeFailures grew by %d, want %d; Refused by %d, want %d", failed, want, refused, n)
	}
	if c := connected.Load(); c != live {
		t.Errorf("Connected ran %d times, want %d (only the live sessions)", c, live)
	}
	if _, closed := tally.snapshot(); closed != 0 {
		t.Errorf("Closed ran %d times during the bad headers; no session should have existed", closed)
	}
	lat := probes.check(t, time.Second)
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("PROXY bad headers: %d connections (%d each of %d kinds) → handshake failures %d, refused %d, sessions created %d",
		(len(kinds)+1)*n, n, len(kinds)+1, st.HandshakeFailures-failures0, st.Refused-refused0, connected.Load()-live)
	t.Logf("PROXY bad headers: proxied clients lost %d, %v; goroutines left %d, fds left %d", probes.lostCount(), lat["during"], g, fds)
}

var errServedProxy = errServedError("the server answered a request behind a bad PROXY header")

type errServedError string

func (e errServedError) Error() string { return string(e) }

// badHeader connects to addr, sends b, half-closes unless quiet, and returns what the
// server sent before it closed the connection.
func badHeader(addr string, b []byte, quiet bool) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(waitLong))
	go func() {
		// The server may close before everything is written (an oversized header):
		// a write error is expected then, and only the close matters.
		c.Write(b)
		if !quiet {
			c.(*net.TCPConn).CloseWrite()
		}
	}()
	got, err := readAllUntilClose(c)
	return got, err
}

func v1(src string) string {
	return string(proxyproto.AppendV1(nil, netip.MustParseAddrPort(src), netip.MustParseAddrPort("127.0.0.1:4000")))
}

// v2 builds a version 2 header byte for byte: the signature, ver_cmd, fam, the declared
// length, then body as given (which may disagree with the length).
func v2(verCmd, fam byte, length int, body []byte) []byte {
	b := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	return append(b, body...)
}

func ip4s(src, dst string, sp, dp uint16) []byte {
	b := netip.MustParseAddr(src).AsSlice()
	b = append(b, netip.MustParseAddr(dst).AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}
