package client

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/supersocket-go/supersocket/internal/proxyproto"
)

// ProxyHeader is a PROXY protocol header the client sends as a connection's first bytes
// (Config.Proxy), before TLS and the WebSocket upgrade, as a load balancer does: for
// testing a server behind one, or for a gateway that relays its own clients and passes
// their addresses on. The server must trust the client's address to take it.
type ProxyHeader struct {
	// Version is 1 (the text line) or 2 (binary, with TLVs). Default 2.
	Version int
	// Source is the client's address to claim, Destination the address it connected to.
	// When Source is zero the connection's own addresses are sent (local, then remote).
	// Both must be of one family, else the header carries none (version 1: UNKNOWN).
	Source, Destination netip.AddrPort
	// Local sends the LOCAL command (version 1: UNKNOWN): a connection of the proxy's
	// own, such as a health check, for which the server keeps the real addresses.
	Local bool
	// TLVs are version 2's Type-Length-Value entries (ALPN 0x01, authority 0x02, …).
	TLVs []ProxyTLV
}

// ProxyTLV is one Type-Length-Value entry of a version 2 header.
type ProxyTLV struct {
	Type  byte
	Value []byte
}

func (p *ProxyHeader) check() error {
	switch {
	case p.Version != 0 && p.Version != 1 && p.Version != 2:
		return bad("Proxy.Version", "%d is not 1 or 2", p.Version)
	case p.Version == 1 && len(p.TLVs) > 0:
		return bad("Proxy.TLVs", "only version 2 carries TLVs")
	case p.Source.IsValid() != p.Destination.IsValid():
		return bad("Proxy.Destination", "Source and Destination go together")
	}
	return nil
}

// header encodes the header for a connection from local to remote.
func (p *ProxyHeader) header(local, remote net.Addr) ([]byte, error) {
	src, dst := p.Source, p.Destination
	if !src.IsValid() {
		src, dst = addrPort(local), addrPort(remote)
	}
	if p.Version == 1 {
		if p.Local {
			return []byte("PROXY UNKNOWN\r\n"), nil
		}
		return proxyproto.AppendV1(nil, src, dst), nil
	}
	cmd := proxyproto.Proxy
	if p.Local {
		cmd = proxyproto.Local
	}
	tlvs := make([]proxyproto.TLV, len(p.TLVs))
	for i, t := range p.TLVs {
		tlvs[i] = proxyproto.TLV{Type: t.Type, Value: t.Value}
	}
	return proxyproto.AppendV2(nil, cmd, src, dst, tlvs, false)
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// sendProxy writes the header as the connection's first bytes, within ctx.
func (c *Conn) sendProxy(ctx context.Context, nc net.Conn) error {
	b, err := c.cfg.Proxy.header(nc.LocalAddr(), nc.RemoteAddr())
	if err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		nc.SetWriteDeadline(d)
		defer nc.SetWriteDeadline(time.Time{})
	}
	if _, err := nc.Write(b); err != nil {
		return fmt.Errorf("proxy header: %w", err)
	}
	return nil
}
