package proxyproto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// v2 builds a version 2 header from hex pieces (spaces ignored) after the signature.
func v2(t testing.TB, pieces ...string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(strings.Join(pieces, ""), " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte(nil), sigV2...), b...)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestParse_V2Vectors drives the binary vectors of version 2: each row a header byte for
// byte, what Parse must make of it, or the error it must return.
func TestParse_V2Vectors(t *testing.T) {
	tests := []struct {
		name      string
		hdr       []byte
		want      Header
		wantErr   error
		trailing  string // bytes after the header, which Parse must not consume
		wantTLVs  int
		checkTLVs func(t *testing.T, h *Header)
	}{
		{name: "PROXY TCP4", hdr: v2(t, "21 11 000c", "7f000002 0a000001", "d431 0fa0"),
			want: Header{Version: 2, Command: Proxy, Family: Inet, Transport: Stream, Source: ap("127.0.0.2:54321"), Destination: ap("10.0.0.1:4000")}},
		{name: "PROXY TCP4 then data", hdr: v2(t, "21 11 000c", "7f000002 0a000001", "d431 0fa0"), trailing: "ECHO hi\r\n",
			want: Header{Version: 2, Command: Proxy, Family: Inet, Transport: Stream, Source: ap("127.0.0.2:54321"), Destination: ap("10.0.0.1:4000")}},
		{name: "PROXY TCP6", hdr: v2(t, "21 21 0024", "20010db8000000000000000000000001", "20010db8000000000000000000000002", "1f90 0050"),
			want: Header{Version: 2, Command: Proxy, Family: Inet6, Transport: Stream, Source: ap("[2001:db8::1]:8080"), Destination: ap("[2001:db8::2]:80")}},
		{name: "PROXY UDP4 (the caller decides)", hdr: v2(t, "21 12 000c", "01020304 05060708", "0001 0002"),
			want: Header{Version: 2, Command: Proxy, Family: Inet, Transport: Datagram, Source: ap("1.2.3.4:1"), Destination: ap("5.6.7.8:2")}},
		{name: "LOCAL, no addresses (a health check)", hdr: v2(t, "20 00 0000"),
			want: Header{Version: 2, Command: Local}},
		{name: "LOCAL with an address block, ignored", hdr: v2(t, "20 11 000c", "01020304 05060708", "0001 0002"),
			want: Header{Version: 2, Command: Local}},
		{name: "LOCAL with an invalid family, ignored", hdr: v2(t, "20 ff 0003", "aabbcc"),
			want: Header{Version: 2, Command: Local}},
		{name: "PROXY UNSPEC", hdr: v2(t, "21 00 0000"),
			want: Header{Version: 2, Command: Proxy}},
		{name: "PROXY UNIX stream", hdr: v2(t, "21 31 00d8", hex.EncodeToString(append([]byte("/run/a.sock"), make([]byte, 97)...)), hex.EncodeToString(append([]byte("/run/b.sock"), make([]byte, 97)...))),
			want: Header{Version: 2, Command: Proxy, Family: Unix, Transport: Stream, SourcePath: "/run/a.sock", DestinationPath: "/run/b.sock"}},
		{name: "TLVs: ALPN, authority, AWS VPC endpoint, NOOP", hdr: v2(t, "21 11 0038", "7f000002 0a000001", "d431 0fa0",
			"01 0002 6832",                                    // ALPN "h2"
			"02 000b 6578616d706c652e636f6d",                  // authority "example.com"
			"ea 0013 01 7670632d3031323334353637383961626364", // AWS: subtype 1, VPC endpoint "vpc-0123456789abcd"
			"04 0000"),
			want:     Header{Version: 2, Command: Proxy, Family: Inet, Transport: Stream, Source: ap("127.0.0.2:54321"), Destination: ap("10.0.0.1:4000")},
			wantTLVs: 4,
			checkTLVs: func(t *testing.T, h *Header) {
				if v, _ := h.Lookup(TypeALPN); string(v) != "h2" {
					t.Errorf("ALPN %q", v)
				}
				if v, _ := h.Lookup(TypeAuthority); string(v) != "example.com" {
					t.Errorf("authority %q", v)
				}
				if v, _ := h.Lookup(TypeAWS); len(v) == 0 || v[0] != 1 || string(v[1:]) != "vpc-0123456789abcd" {
					t.Errorf("AWS %q", v)
				}
			}},
		{name: "version 1 in a v2 block", hdr: v2(t, "11 11 000c", "7f000002 0a000001", "d431 0fa0"), wantErr: ErrMalformed},
		{name: "command 2", hdr: v2(t, "22 11 000c", "7f000002 0a000001", "d431 0fa0"), wantErr: ErrMalformed},
		{name: "family 4", hdr: v2(t, "21 41 000c", "7f000002 0a000001", "d431 0fa0"), wantErr: ErrMalformed},
		{name: "transport 3", hdr: v2(t, "21 13 000c", "7f000002 0a000001", "d431 0fa0"), wantErr: ErrMalformed},
		{name: "INET without a transport", hdr: v2(t, "21 10 000c", "7f000002 0a000001", "d431 0fa0"), wantErr: ErrMalformed},
		{name: "TCP4 length shorter than its addresses", hdr: v2(t, "21 11 0008", "7f000002 0a000001"), wantErr: ErrMalformed},
		{name: "TCP6 length of a TCP4 block", hdr: v2(t, "21 21 000c", "7f000002 0a000001", "d431 0fa0"), wantErr: ErrMalformed},
		{name: "TLV running past the end", hdr: v2(t, "21 11 0011", "7f000002 0a000001", "d431 0fa0", "01 0009 6832"), wantErr: ErrMalformed},
		{name: "stray bytes after the TLVs", hdr: v2(t, "21 11 000e", "7f000002 0a000001", "d431 0fa0", "0100"), wantErr: ErrMalformed},
		{name: "CRC32C of the wrong size", hdr: v2(t, "21 11 0011", "7f000002 0a000001", "d431 0fa0", "03 0002 0000"), wantErr: ErrMalformed},
		{name: "CRC32C mismatch", hdr: v2(t, "21 11 0013", "7f000002 0a000001", "d431 0fa0", "03 0004 deadbeef"), wantErr: ErrMalformed},
		{name: "over the limit", hdr: v2(t, "21 11 ffff"), wantErr: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append(append([]byte(nil), tt.hdr...), tt.trailing...)
			h, n, err := Parse(in, 4096)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse: %v, %d, %v; want %v", h, n, err, tt.wantErr)
				}
				return
			}
			if err != nil || n != len(tt.hdr) {
				t.Fatalf("Parse: n=%d err=%v; want n=%d", n, err, len(tt.hdr))
			}
			got := *h
			got.TLVs = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if len(h.TLVs) != tt.wantTLVs {
				t.Errorf("%d TLVs, want %d", len(h.TLVs), tt.wantTLVs)
			}
			if tt.checkTLVs != nil {
				tt.checkTLVs(t, h)
			}
			// Every proper prefix asks for more bytes.
			for i := range len(tt.hdr) {
				if h, n, err := Parse(tt.hdr[:i], 4096); h != nil || n != 0 || err != nil {
					t.Fatalf("prefix of %d bytes: %v, %d, %v; want need-more", i, h, n, err)
				}
			}
		})
	}
}

func TestParse_V1(t *testing.T) {
	tests := []struct {
		in      string
		want    Header
		wantErr error
	}{
		{in: "PROXY TCP4 127.0.0.2 127.0.0.1 54321 4000\r\n", want: Header{Version: 1, Command: Proxy, Family: Inet, Transport: Stream, Source: ap("127.0.0.2:54321"), Destination: ap("127.0.0.1:4000")}},
		{in: "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", want: Header{Version: 1, Command: Proxy, Family: Inet6, Transport: Stream, Source: ap("[2001:db8::1]:1"), Destination: ap("[::1]:65535")}},
		{in: "PROXY UNKNOWN\r\n", want: Header{Version: 1, Command: Local, Transport: Stream}},
		{in: "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", want: Header{Version: 1, Command: Local, Transport: Stream}},
		{in: "PROXY TCP4 127.0.0.2 127.0.0.1 54321 4000\n", wantErr: ErrMalformed},
		{in: "PROXY TCP5 127.0.0.2 127.0.0.1 54321 4000\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP4 ::1 127.0.0.1 1 2\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP6 127.0.0.1 ::1 1 2\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP4 127.0.0.2 127.0.0.1 54321\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP4 127.0.0.2 127.0.0.1 54321 4000 9\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP4 127.0.0.2 127.0.0.1 65536 4000\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP4 127.0.0.2 127.0.0.1 0080 4000\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP4 127.0.0.2 127.0.0.1 -1 4000\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP4 127.0.0.2  127.0.0.1 1 4000\r\n", wantErr: ErrMalformed},
		{in: "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", wantErr: ErrMalformed},
		{in: "PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n", wantErr: ErrTooLong},
		{in: "HELLO", wantErr: ErrNotProxy},
		{in: "GET / HTTP/1.1\r\n", wantErr: ErrNotProxy},
	}
	for _, tt := range tests {
		h, n, err := Parse([]byte(tt.in+"after"), 0)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%q: %v, %d, %v; want %v", tt.in, h, n, err, tt.wantErr)
			}
			continue
		}
		if err != nil || n != len(tt.in) || !reflect.DeepEqual(*h, tt.want) {
			t.Errorf("%q: %+v, %d, %v; want %+v, %d", tt.in, h, n, err, tt.want, len(tt.in))
		}
	}
}

// TestParse_Truncated: a cut header asks for more bytes until the limit, never beyond.
func TestParse_Truncated(t *testing.T) {
	line := "PROXY TCP4 127.0.0.2 127.0.0.1 54321 4000\r\n"
	for i := range len(line) {
		if h, n, err := Parse([]byte(line[:i]), 0); h != nil || n != 0 || err != nil {
			t.Fatalf("%q: %v, %d, %v; want need-more", line[:i], h, n, err)
		}
	}
	long := "PROXY UNKNOWN " + strings.Repeat("x", MaxV1)
	if _, _, err := Parse([]byte(long[:MaxV1]), 0); !errors.Is(err, ErrTooLong) {
		t.Fatalf("%d bytes without an end: %v; want ErrTooLong", MaxV1, err)
	}
	// A v2 header declaring more than the limit fails from its first 16 bytes.
	big := v2(t, "21 11 1000")
	if _, _, err := Parse(big, 512); !errors.Is(err, ErrTooLong) {
		t.Fatalf("4 KiB declared, limit 512: %v; want ErrTooLong", err)
	}
}

func TestSignature(t *testing.T) {
	for in, want := range map[string]Match{
		"": Maybe, "P": Maybe, "PROXY": Maybe, "PROXY ": Yes, "PROXY T": Yes, "PING": No,
		"\r\n": Maybe, "\r\n\r\n\x00\r\nQUI": Maybe, string(sigV2): Yes, "\r\n\r\nX": No, "GET ": No, "\x16\x03\x01": No,
	} {
		if got := Signature([]byte(in)); got != want {
			t.Errorf("Signature(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestAppend_RoundTrips(t *testing.T) {
	src, dst := ap("127.0.0.2:40000"), ap("127.0.0.1:4000")
	src6, dst6 := ap("[2001:db8::7]:1"), ap("[::1]:2")
	check := func(b []byte, want Header, tlvs int) {
		t.Helper()
		h, n, err := Parse(append(b, "rest"...), 0)
		if err != nil || n != len(b) {
			t.Fatalf("%q: n=%d err=%v", b, n, err)
		}
		if len(h.TLVs) != tlvs {
			t.Fatalf("%d TLVs, want %d", len(h.TLVs), tlvs)
		}
		h.TLVs = nil
		if !reflect.DeepEqual(*h, want) {
			t.Fatalf("%+v, want %+v", *h, want)
		}
	}
	check(AppendV1(nil, src, dst), Header{Version: 1, Command: Proxy, Family: Inet, Transport: Stream, Source: src, Destination: dst}, 0)
	check(AppendV1(nil, src6, dst6), Header{Version: 1, Command: Proxy, Family: Inet6, Transport: Stream, Source: src6, Destination: dst6}, 0)
	check(AppendV1(nil, src, dst6), Header{Version: 1, Command: Local, Transport: Stream}, 0)
	b, err := AppendV2(nil, Proxy, src, dst, []TLV{{TypeALPN, []byte("h2")}, {TypeAuthority, []byte("a.example")}}, true)
	if err != nil {
		t.Fatal(err)
	}
	check(b, Header{Version: 2, Command: Proxy, Family: Inet, Transport: Stream, Source: src, Destination: dst}, 3)
	b, _ = AppendV2(nil, Proxy, src6, dst6, nil, false)
	check(b, Header{Version: 2, Command: Proxy, Family: Inet6, Transport: Stream, Source: src6, Destination: dst6}, 0)
	b, _ = AppendV2(nil, Local, src, dst, nil, false)
	check(b, Header{Version: 2, Command: Local}, 0)
	if _, err := AppendV2(nil, Proxy, src, dst, []TLV{{1, make([]byte, 0xFFFF)}}, false); err == nil {
		t.Fatal("a header over MaxV2 was written")
	}
}

// FuzzParse: whatever the bytes, Parse never panics, never claims more bytes than it was
// given or than the limit, asks for more only on a prefix that could still be a header,
// and a header it accepts parses the same from exactly its own bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 127.0.0.2 127.0.0.1 54321 4000\r\nECHO x\r\n"), 512)
	f.Add([]byte("PROXY UNKNOWN\r\n"), 0)
	f.Add(v2(f, "21 11 000c", "7f000002 0a000001", "d431 0fa0"), 512)
	f.Add(v2(f, "20 00 0000"), 512)
	f.Add(v2(f, "21 11 0015", "7f000002 0a000001", "d431 0fa0", "01 0002 6832 04 0001 00"), 512)
	b, _ := AppendV2(nil, Proxy, ap("[2001:db8::7]:1"), ap("[::1]:2"), []TLV{{TypeAuthority, []byte("x")}}, true)
	f.Add(b, 4096)
	f.Add([]byte("\x16\x03\x01\x00"), 512)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		limit = limit & 0x1FFFF
		h, n, err := Parse(data, limit)
		eff := min(max(limit, MaxV1), MaxV2)
		switch {
		case err != nil:
			if h != nil || n != 0 {
				t.Fatalf("error %v with a header or a length", err)
			}
		case h == nil:
			if n != 0 {
				t.Fatalf("need-more with n=%d", n)
			}
			if len(data) >= eff {
				t.Fatalf("need-more with %d bytes, the limit is %d", len(data), eff)
			}
		default:
			if n <= 0 || n > len(data) || n > eff {
				t.Fatalf("n=%d of %d bytes, limit %d", n, len(data), eff)
			}
			h2, n2, err2 := Parse(data[:n:n], limit)
			if err2 != nil || n2 != n || h2.Version != h.Version || h2.Command != h.Command || h2.Source != h.Source || len(h2.TLVs) != len(h.TLVs) {
				t.Fatalf("reparsing its own %d bytes: %+v, %d, %v", n, h2, n2, err2)
			}
			for _, tlv := range h.TLVs {
				if !bytes.Contains(data[:n], tlv.Value) {
					t.Fatal("a TLV value outside the header")
				}
			}
		}
	})
}
