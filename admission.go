package supersocket

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// admit decides, before any session exists, whether a connection (or a new UDP peer) may
// become one: AllowConnect (skipped for outbound sessions), MaxConnections and
// MaxConnectionsPerIP. On success the connection is counted until release(ip).
func (srv *Server[T]) admit(remote net.Addr, outbound bool) (ip netip.Addr, why error) {
	if !outbound && !srv.allowConnect(remote) {
		return ip, ErrConnectionNotAllowed
	}
	if srv.cfg.MaxConnectionsPerIP > 0 && !outbound {
		ip = addrIP(remote)
	}
	if why = srv.take(ip); why != nil {
		return netip.Addr{}, why
	}
	return ip, nil
}

// allowConnect asks AllowConnect, if set, about an inbound connection.
func (srv *Server[T]) allowConnect(remote net.Addr) (ok bool) {
	allow := srv.cfg.AllowConnect
	if allow == nil {
		return true
	}
	defer func() {
		if p := recover(); p != nil {
			srv.log.Error("AllowConnect panicked; refusing", "remote", remote.String(), "panic", p)
			ok = false
		}
	}()
	return allow(remote)
}

// take counts a connection under MaxConnections and, when ip is valid, under
// MaxConnectionsPerIP; release(ip) undoes it.
func (srv *Server[T]) take(ip netip.Addr) error {
	if srv.active.Add(1) > int64(srv.cfg.MaxConnections) {
		srv.active.Add(-1)
		return ErrMaxConnections
	}
	if ip.IsValid() && !srv.perIP.add(ip, srv.cfg.MaxConnectionsPerIP) {
		srv.active.Add(-1)
		return ErrTooManyFromIP
	}
	return nil
}

// release undoes a successful admit.
func (srv *Server[T]) release(ip netip.Addr) {
	srv.active.Add(-1)
	// A session of the epoll engine keeps its peer's IP even when no cap counts it.
	if ip.IsValid() && srv.cfg.MaxConnectionsPerIP > 0 {
		srv.perIP.remove(ip)
	}
}

func addrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// ipCounts counts live sessions per remote IP.
type ipCounts struct {
	mu sync.Mutex
	m  map[netip.Addr]int
}

func (c *ipCounts) add(ip netip.Addr, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[ip] >= limit {
		return false
	}
	if c.m == nil {
		c.m = make(map[netip.Addr]int)
	}
	c.m[ip]++
	return true
}

func (c *ipCounts) remove(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[ip] <= 1 {
		delete(c.m, ip)
		return
	}
	c.m[ip]--
}

// tokenBucket paces accepting: one token per connection, refilled at rate per second up
// to burst. Listeners share it.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// wait takes a token, sleeping until one is due; false if quit closed first.
func (b *tokenBucket) wait(quit <-chan struct{}) bool {
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return true
		}
		due := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(due)
		select {
		case <-quit:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
