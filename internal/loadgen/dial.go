package loadgen

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/wsclient"
)

// dialAll opens n connections to addr, at most 128 at a time, and upgrades each with hs
// unless it is nil. Connection i binds source address sources[i % len(sources)] when
// sources is not empty. It returns the open connections (nil where a dial failed) and
// the errors.
func dialAll(ctx context.Context, addr string, n int, sources []net.IP, timeout time.Duration, hs *wsclient.Handshake) ([]net.Conn, []error) {
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, 128) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				d := net.Dialer{Timeout: timeout}
				if len(sources) > 0 {
					d.LocalAddr = &net.TCPAddr{IP: sources[i%len(sources)]}
				}
				conns[i], errs[i] = dial(ctx, d, addr, hs, timeout)
			}
		})
	}
	wg.Wait()
	return conns, errs
}

// dial opens one connection with d and upgrades it with hs unless it is nil.
func dial(ctx context.Context, d net.Dialer, addr string, hs *wsclient.Handshake, timeout time.Duration) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || hs == nil {
		return c, err
	}
	if err := upgrade(c, hs, timeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// loopbackSourcesPerAddr is how many connections one source address gets before the next
// is used: below the 28 232 ports of Linux's default ephemeral range.
const loopbackSourcesPerAddr = 20000

// sourceAddrs parses -source-addrs: "auto" picks 127.0.0.1, 127.0.0.2, … when n
// connections to an IPv4 loopback target need more ephemeral ports than one source
// address has, and nothing otherwise; any other value is a comma-separated list.
func sourceAddrs(spec, target string, n int) ([]net.IP, error) {
	if spec == "" || spec == "auto" {
		host, _, err := net.SplitHostPort(target)
		if err != nil {
			return nil, fmt.Errorf("-addr: %w", err)
		}
		ip := net.ParseIP(host)
		if n <= loopbackSourcesPerAddr || ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			return nil, nil
		}
		k := (n + loopbackSourcesPerAddr - 1) / loopbackSourcesPerAddr
		if k > 254 {
			return nil, fmt.Errorf("-conns %d needs more than 254 loopback source addresses", n)
		}
		var ips []net.IP
		for i := range k {
			ips = append(ips, net.IPv4(127, 0, 0, byte(1+i)))
		}
		return ips, nil
	}
	var ips []net.IP
	for s := range strings.SplitSeq(spec, ",") {
		s = strings.TrimSpace(s)
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("-source-addrs: %q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// checkFileLimit raises the soft limit on open files and fails when need descriptors
// cannot fit under it.
func checkFileLimit(need int) error {
	limit, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("cannot raise the open-file limit: %w", err)
	}
	if uint64(need) > limit {
		return fmt.Errorf("%d connections need about %d open files, but the limit is %d (raise the hard limit: ulimit -Hn, as root); the server needs as many", need-64, need, limit)
	}
	return nil
}
