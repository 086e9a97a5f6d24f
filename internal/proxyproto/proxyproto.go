// Package proxyproto reads and writes the headers of the PROXY protocol, versions 1 and 2
// (HAProxy's specification, "The PROXY protocol", 2020 revision): the line or binary block
// a load balancer puts before a connection's first byte to tell the server who the client
// is.
//
// Parse works on bytes the caller has read, with a size limit, and never reads beyond what
// the header declares, so a server can read the header on the connection's own goroutine,
// bounded by its own deadline, and hand whatever followed the header to the next stage
// (detection, TLS, the receive filter). Append writes headers (the client package's
// Config.Proxy, and tests).
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strconv"
)

// Command is what a header asks of the receiver.
type Command uint8

const (
	// Local: the connection was made by the proxy itself (a health check); the receiver
	// uses the connection's real addresses. Version 1 has no LOCAL; "PROXY UNKNOWN" is
	// its nearest, and is reported as Local.
	Local Command = 0
	// Proxy: the connection is relayed for a client whose addresses the header carries.
	Proxy Command = 1
)

// Family is the address family of a version 2 header (its high nibble).
type Family uint8

// Address families.
const (
	Unspec Family = 0
	Inet   Family = 1
	Inet6  Family = 2
	Unix   Family = 3
)

// Transport is the transport protocol of a version 2 header (its low nibble).
type Transport uint8

// Transports.
const (
	TransportUnspec Transport = 0
	Stream          Transport = 1
	Datagram        Transport = 2
)

// TLV types the specification names.
const (
	TypeALPN      = 0x01
	TypeAuthority = 0x02
	TypeCRC32C    = 0x03
	TypeNoop      = 0x04
	TypeUniqueID  = 0x05
	TypeSSL       = 0x20
	TypeNetNS     = 0x30
	TypeGCP       = 0xE0 // Google Cloud: Private Service Connect connection ID (8 bytes)
	TypeAWS       = 0xEA // AWS: the first byte is a subtype; 0x01: the VPC endpoint ID
	TypeAzure     = 0xEE // Azure: the first byte is a subtype; 0x01: the private endpoint's link ID
)

// Limits.
const (
	// MaxV1 is the longest version 1 header, "\r\n" included.
	MaxV1 = 107
	// MaxV2 is the longest version 2 header: 16 bytes and a 16-bit length.
	MaxV2 = 16 + 0xFFFF
	// v2Fixed is the fixed part of a version 2 header.
	v2Fixed = 16
)

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// TLV is a version 2 header's Type-Length-Value entry. Value aliases the parsed bytes.
type TLV struct {
	Type  byte
	Value []byte
}

// Header is a parsed PROXY header.
type Header struct {
	Version   int // 1 or 2
	Command   Command
	Family    Family    // Unspec for LOCAL and for "PROXY UNKNOWN"
	Transport Transport // Stream for version 1
	// Source and Destination are the client's address and the address it connected to,
	// for Inet and Inet6; zero otherwise.
	Source, Destination netip.AddrPort
	// SourcePath and DestinationPath are the Unix socket paths of a Unix family header.
	SourcePath, DestinationPath string
	// TLVs are a version 2 header's entries after the addresses, in order; their values
	// alias the bytes given to Parse.
	TLVs []TLV
}

// Errors. Parse's errors wrap ErrMalformed or ErrTooLong, with detail.
var (
	// ErrNotProxy: the bytes do not start with either signature.
	ErrNotProxy = errors.New("proxyproto: no PROXY protocol signature")
	// ErrMalformed: a header that breaks the specification.
	ErrMalformed = errors.New("proxyproto: malformed header")
	// ErrTooLong: a header longer than the limit (a version 1 line without its end within
	// 107 bytes, or a version 2 length over the caller's limit).
	ErrTooLong = errors.New("proxyproto: header too long")
)

// Signature reports whether b starts with a PROXY signature (a version 1 "PROXY " or the
// version 2 block): Yes, No, or Maybe when b is too short to tell (a proper prefix of one).
func Signature(b []byte) Match {
	if len(b) == 0 {
		return Maybe
	}
	for _, sig := range [][]byte{sigV1, sigV2} {
		n := min(len(b), len(sig))
		if bytes.Equal(b[:n], sig[:n]) {
			if n == len(sig) {
				return Yes
			}
			return Maybe
		}
	}
	return No
}

// Match is Signature's answer.
type Match uint8

// Signature's answers.
const (
	No Match = iota
	Yes
	Maybe
)

// Parse parses the header at the front of b, whose length is at most limit bytes
// (limit is raised to MaxV1 and capped at MaxV2). It returns the header and its length;
// n == 0 with a nil error means more bytes are needed (b is a proper prefix of a
// header that may still be valid). A header can never need more than limit bytes: once
// it is known to, Parse fails with ErrTooLong, so the caller never buffers more.
// ErrNotProxy means b has no signature at all.
func Parse(b []byte, limit int) (h *Header, n int, err error) {
	limit = min(max(limit, MaxV1), MaxV2)
	switch Signature(b) {
	case No:
		return nil, 0, ErrNotProxy
	case Maybe:
		return nil, 0, nil
	}
	if b[0] == 'P' {
		return parseV1(b)
	}
	return parseV2(b, limit)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// parseV1 parses "PROXY TCP4 src dst sport dport\r\n" (or TCP6, or UNKNOWN …).
func parseV1(b []byte) (*Header, int, error) {
	end := bytes.Index(b[:min(len(b), MaxV1)], []byte("\r\n"))
	if end < 0 {
		if i := bytes.IndexByte(b[:min(len(b), MaxV1)], '\n'); i >= 0 {
			return nil, 0, malformed("v1: a line ending without \\r")
		}
		if len(b) >= MaxV1 {
			return nil, 0, fmt.Errorf("%w: v1: no \\r\\n within %d bytes", ErrTooLong, MaxV1)
		}
		return nil, 0, nil
	}
	line := b[len(sigV1):end]
	n := end + 2
	h := &Header{Version: 1, Transport: Stream}
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	switch string(proto) {
	case "UNKNOWN":
		// The receiver must ignore whatever follows, up to the line's end.
		h.Command = Local
		return h, n, nil
	case "TCP4":
		h.Family = Inet
	case "TCP6":
		h.Family = Inet6
	default:
		return nil, 0, malformed("v1: protocol %q is not TCP4, TCP6 or UNKNOWN", proto)
	}
	h.Command = Proxy
	f := bytes.Split(rest, []byte(" "))
	if len(f) != 4 {
		return nil, 0, malformed("v1: %d fields after the protocol, want 4 (source, destination, ports)", len(f))
	}
	src, err := v1Addr(f[0], h.Family)
	if err != nil {
		return nil, 0, err
	}
	dst, err := v1Addr(f[1], h.Family)
	if err != nil {
		return nil, 0, err
	}
	sp, err := v1Port(f[2])
	if err != nil {
		return nil, 0, err
	}
	dp, err := v1Port(f[3])
	if err != nil {
		return nil, 0, err
	}
	h.Source, h.Destination = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, n, nil
}

func v1Addr(b []byte, fam Family) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	switch {
	case err != nil:
		return a, malformed("v1: address %q: %v", b, err)
	case a.Zone() != "":
		return a, malformed("v1: address %q has a zone", b)
	case fam == Inet && !a.Is4():
		return a, malformed("v1: TCP4 with address %q", b)
	case fam == Inet6 && !a.Is6():
		return a, malformed("v1: TCP6 with address %q", b)
	}
	return a, nil
}

func v1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || len(b) > 1 && b[0] == '0' {
		return 0, malformed("v1: port %q", b)
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, malformed("v1: port %q", b)
		}
	}
	p, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, malformed("v1: port %q out of range", b)
	}
	return uint16(p), nil
}

// Address block sizes of version 2 families.
const (
	inetLen  = 4 + 4 + 2 + 2
	inet6Len = 16 + 16 + 2 + 2
	unixLen  = 108 + 108
)

func parseV2(b []byte, limit int) (*Header, int, error) {
	if len(b) < v2Fixed {
		return nil, 0, nil
	}
	verCmd, famProto := b[12], b[13]
	length := int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 {
		return nil, 0, malformed("v2: version %d", verCmd>>4)
	}
	cmd := Command(verCmd & 0xF)
	if cmd != Local && cmd != Proxy {
		return nil, 0, malformed("v2: command %#x is not LOCAL or PROXY", verCmd&0xF)
	}
	fam, proto := Family(famProto>>4), Transport(famProto&0xF)
	// The only valid pairs: 0x00 (UNSPEC), and INET, INET6 or UNIX with STREAM or DGRAM.
	valid := famProto == 0 || fam >= Inet && fam <= Unix && (proto == Stream || proto == Datagram)
	if !valid && cmd == Proxy {
		return nil, 0, malformed("v2: address family and transport %#02x", famProto)
	}
	if v2Fixed+length > limit {
		return nil, 0, fmt.Errorf("%w: v2: %d bytes declared, the limit is %d", ErrTooLong, v2Fixed+length, limit)
	}
	n := v2Fixed + length
	if len(b) < n {
		return nil, 0, nil
	}
	if !valid {
		// LOCAL ignores the family, and whatever the block holds.
		return &Header{Version: 2, Command: Local}, n, nil
	}
	h := &Header{Version: 2, Command: cmd, Family: fam, Transport: proto}
	body := b[v2Fixed:n]
	var addrLen int
	switch fam {
	case Inet:
		addrLen = inetLen
	case Inet6:
		addrLen = inet6Len
	case Unix:
		addrLen = unixLen
	}
	if length < addrLen {
		return nil, 0, malformed("v2: %d bytes after the header for family %d, its addresses need %d", length, fam, addrLen)
	}
	switch fam {
	case Inet:
		src, _ := netip.AddrFromSlice(body[0:4])
		dst, _ := netip.AddrFromSlice(body[4:8])
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	case Inet6:
		src, _ := netip.AddrFromSlice(body[0:16])
		dst, _ := netip.AddrFromSlice(body[16:32])
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	case Unix:
		h.SourcePath = unixPath(body[0:108])
		h.DestinationPath = unixPath(body[108:216])
	}
	tlvs := body[addrLen:]
	for off := 0; off < len(tlvs); {
		if len(tlvs)-off < 3 {
			return nil, 0, malformed("v2: %d stray bytes after the last TLV", len(tlvs)-off)
		}
		t := tlvs[off]
		l := int(binary.BigEndian.Uint16(tlvs[off+1 : off+3]))
		if off+3+l > len(tlvs) {
			return nil, 0, malformed("v2: TLV %#x declares %d bytes, %d are left", t, l, len(tlvs)-off-3)
		}
		v := tlvs[off+3 : off+3+l]
		if t == TypeCRC32C {
			if l != 4 {
				return nil, 0, malformed("v2: a CRC32C TLV of %d bytes", l)
			}
			if !checkCRC(b[:n], off+v2Fixed+addrLen+3) {
				return nil, 0, malformed("v2: CRC32C mismatch")
			}
		}
		h.TLVs = append(h.TLVs, TLV{Type: t, Value: v})
		off += 3 + l
	}
	if cmd == Local {
		// The receiver ignores LOCAL's addresses and uses the connection's.
		h.Family, h.Transport = Unspec, TransportUnspec
		h.Source, h.Destination, h.SourcePath, h.DestinationPath = netip.AddrPort{}, netip.AddrPort{}, "", ""
	}
	return h, n, nil
}

// unixPath is a NUL-padded Unix socket path.
func unixPath(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkCRC verifies a CRC32C TLV whose 4-byte value starts at at: the checksum of the
// whole header with that value zeroed.
func checkCRC(hdr []byte, at int) bool {
	want := binary.BigEndian.Uint32(hdr[at : at+4])
	var zero [4]byte
	c := crc32.Update(0, castagnoli, hdr[:at])
	c = crc32.Update(c, castagnoli, zero[:])
	c = crc32.Update(c, castagnoli, hdr[at+4:])
	return c == want
}

// Lookup returns the value of the first TLV of type t, and whether there is one.
func (h *Header) Lookup(t byte) ([]byte, bool) {
	for _, tlv := range h.TLVs {
		if tlv.Type == t {
			return tlv.Value, true
		}
	}
	return nil, false
}

// AppendV1 appends a version 1 header: "PROXY TCP4 …" or "PROXY TCP6 …" for valid
// addresses of one family, "PROXY UNKNOWN" otherwise.
func AppendV1(dst []byte, src, to netip.AddrPort) []byte {
	s, d := src.Addr().Unmap(), to.Addr().Unmap()
	switch {
	case src.IsValid() && to.IsValid() && s.Is4() && d.Is4():
		dst = append(dst, "PROXY TCP4 "...)
	case src.IsValid() && to.IsValid() && s.Is6() && d.Is6():
		dst = append(dst, "PROXY TCP6 "...)
	default:
		return append(dst, "PROXY UNKNOWN\r\n"...)
	}
	dst = s.AppendTo(dst)
	dst = append(dst, ' ')
	dst = d.AppendTo(dst)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(src.Port()), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(to.Port()), 10)
	return append(dst, "\r\n"...)
}

// AppendV2 appends a version 2 header for a stream: PROXY with src and to (both IPv4 or
// both IPv6; otherwise the family is Unspec), or LOCAL when cmd is Local, followed by
// tlvs. With crc set a CRC32C TLV is added last. It fails when the header would exceed
// MaxV2.
func AppendV2(dst []byte, cmd Command, src, to netip.AddrPort, tlvs []TLV, crc bool) ([]byte, error) {
	start := len(dst)
	dst = append(dst, sigV2...)
	dst = append(dst, 0x20|byte(cmd&1), 0, 0, 0)
	s, d := src.Addr().Unmap(), to.Addr().Unmap()
	switch {
	case cmd == Local || !src.IsValid() || !to.IsValid():
	case s.Is4() && d.Is4(), s.Is6() && d.Is6():
		fam := Inet
		if s.Is6() {
			fam = Inet6
		}
		dst[start+13] = byte(fam)<<4 | byte(Stream)
		dst = append(dst, s.AsSlice()...)
		dst = append(dst, d.AsSlice()...)
		dst = binary.BigEndian.AppendUint16(dst, src.Port())
		dst = binary.BigEndian.AppendUint16(dst, to.Port())
	}
	for _, t := range tlvs {
		if len(t.Value) > 0xFFFF {
			return dst[:start], fmt.Errorf("proxyproto: TLV %#x of %d bytes", t.Type, len(t.Value))
		}
		dst = append(dst, t.Type)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.Value)))
		dst = append(dst, t.Value...)
	}
	crcAt := 0
	if crc {
		dst = append(dst, TypeCRC32C, 0, 4)
		crcAt = len(dst)
		dst = append(dst, 0, 0, 0, 0)
	}
	length := len(dst) - start - v2Fixed
	if length > 0xFFFF {
		return dst[:start], fmt.Errorf("proxyproto: a %d-byte header is over the limit of %d", length+v2Fixed, MaxV2)
	}
	binary.BigEndian.PutUint16(dst[start+14:], uint16(length))
	if crc {
		binary.BigEndian.PutUint32(dst[crcAt:], crc32.Checksum(dst[start:], castagnoli))
	}
	return dst, nil
}
