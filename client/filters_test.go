package client_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/apps"
)

// filterCase is a built-in filter and a generator of distinct frames for it.
type filterCase struct {
	name  string
	fac   filter.Factory
	frame func(i int) []byte
}

// body returns a payload that differs per i, in content and in length (0 to 12 bytes of
// filler), so that frames of different sizes follow each other.
func body(i int) []byte {
	return fmt.Appendf(nil, "b%d%s", i, strings.Repeat("x", i%13))
}

// lengthFrame builds a frame for a LengthPrefixed filter described by lf.
func lengthFrame(lf filter.LengthField, b []byte) []byte {
	hs := lf.HeaderSize
	if hs == 0 {
		hs = lf.Offset + lf.Size
	}
	h := bytes.Repeat([]byte{'h'}, hs)
	v := uint64(len(b))
	if lf.IncludesHeader {
		v += uint64(hs)
	}
	var order binary.ByteOrder = binary.BigEndian
	if lf.LittleEndian {
		order = binary.LittleEndian
	}
	f := h[lf.Offset : lf.Offset+lf.Size]
	switch lf.Size {
	case 1:
		f[0] = byte(v)
	case 2:
		order.PutUint16(f, uint16(v))
	case 4:
		order.PutUint32(f, uint32(v))
	case 8:
		order.PutUint64(f, v)
	}
	return append(h, b...)
}

func lengthCase(name string, fac filter.Factory, lf filter.LengthField) filterCase {
	return filterCase{name, fac, func(i int) []byte {
		if i%5 == 0 {
			return lengthFrame(lf, nil) // an empty body completes with its header
		}
		return lengthFrame(lf, body(i))
	}}
}

// builtinFilters covers every built-in filter of package filter (and the echo app's).
func builtinFilters() []filterCase {
	header6 := filter.LengthField{HeaderSize: 6, Offset: 2, Size: 4, IncludesHeader: true}
	u8 := filter.LengthField{Size: 1}
	u64le := filter.LengthField{Size: 8, LittleEndian: true}
	echoLF := filter.LengthField{HeaderSize: 5, Size: 2, LittleEndian: true, IncludesHeader: true}
	return []filterCase{
		{"Terminator", filter.Terminator([]byte("##")), func(i int) []byte {
			return append(body(i), "##"...)
		}},
		{"CommandLine", filter.CommandLine(), func(i int) []byte {
			if i%4 == 0 {
				return fmt.Appendf(nil, "PING%d\n", i) // a key alone, a bare "\n" ending
			}
			return fmt.Appendf(nil, "ECHO %s %d\r\n", body(i), i)
		}},
		{"FixedSize", filter.FixedSize(12), func(i int) []byte {
			return fmt.Appendf(nil, "%012d", i)
		}},
		{"FixedHeader", filter.FixedHeader(3, func(h []byte) (int, error) {
			return int(binary.LittleEndian.Uint16(h[1:])), nil
		}), func(i int) []byte {
			b := body(i)
			if i%5 == 0 {
				b = nil
			}
			return append(binary.LittleEndian.AppendUint16([]byte{'P'}, uint16(len(b))), b...)
		}},
		lengthCase("LengthPrefixed/header6", filter.LengthPrefixed(header6), header6),
		lengthCase("LengthPrefixed/uint8", filter.LengthPrefixed(u8), u8),
		lengthCase("LengthPrefixed/uint64LE", filter.LengthPrefixed(u64le), u64le),
		lengthCase("Uint16BE", filter.Uint16BE(), filter.LengthField{Size: 2}),
		lengthCase("Uint16LE", filter.Uint16LE(), filter.LengthField{Size: 2, LittleEndian: true}),
		lengthCase("Uint32BE", filter.Uint32BE(), filter.LengthField{Size: 4}),
		lengthCase("Uint32LE", filter.Uint32LE(), filter.LengthField{Size: 4, LittleEndian: true}),
		lengthCase("EchoPacket", apps.EchoFilter(), echoLF),
		{"BeginEndMark", filter.BeginEndMark([]byte("!<"), []byte(">!")), func(i int) []byte {
			return fmt.Appendf(nil, "!<%s>!", body(i))
		}},
		{"CountSplitter", filter.CountSplitter('#', 4), func(i int) []byte {
			return fmt.Appendf(nil, "#ADD#%d#%s#", i, body(i))
		}},
		{"HTTPHeader", filter.HTTPHeader(), func(i int) []byte {
			if i%3 == 0 {
				return fmt.Appendf(nil, "GET /item/%d HTTP/1.1\r\nHost: example.com\r\n\r\n", i)
			}
			b := body(i)
			return fmt.Appendf(nil, "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		}},
		{"Switch", filter.Switch(map[byte]filter.Factory{
			'Y': filter.BeginEndMark([]byte("Y"), []byte{0x00, 0xff}),
			'*': filter.BeginEndMark([]byte("*"), []byte("#")),
		}), func(i int) []byte {
			if i%2 == 0 {
				return fmt.Appendf(nil, "Y%s\x00\xff", body(i))
			}
			return fmt.Appendf(nil, "*%s#", body(i))
		}},
	}
}

// TestFilters runs an echo server with every built-in filter: the client, framing with the
// same filter, gets back exactly the frame it sent, sequentially and with pipelined
// Requests from several goroutines.
func TestFilters(t *testing.T) {
	for _, fc := range builtinFilters() {
		t.Run(fc.name, func(t *testing.T) {
			srv := startServer(t, fc.fac, echoFrame)
			c := dial(t, client.Config{Addr: addrOf(srv), Filter: fc.fac})
			ctx := testCtx(t)

			// Sequential, sometimes with the frame in two parts.
			for i := range 30 {
				frame := fc.frame(i)
				parts := [][]byte{frame}
				if i%2 == 1 {
					parts = [][]byte{frame[:len(frame)/2], frame[len(frame)/2:]}
				}
				reply, err := c.Request(ctx, parts...)
				if err != nil {
					t.Fatalf("Request %d: %v", i, err)
				}
				if !bytes.Equal(reply.Frame, frame) {
					t.Fatalf("Request %d: reply frame %q, want %q", i, reply.Frame, frame)
				}
			}

			// Pipelined: each goroutine must get its own replies.
			const goroutines, each = 8, 40
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for k := range each {
						frame := fc.frame(1000 + g*each + k)
						reply, err := c.Request(ctx, frame)
						if err != nil {
							t.Errorf("goroutine %d, request %d: %v", g, k, err)
							return
						}
						if !bytes.Equal(reply.Frame, frame) {
							t.Errorf("goroutine %d, request %d: reply %q, want %q", g, k, reply.Frame, frame)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestFilterFields checks that a Message carries the fields its filter sets, copied.
func TestFilterFields(t *testing.T) {
	t.Run("CommandLine", func(t *testing.T) {
		srv := startServer(t, filter.CommandLine(), echoFrame)
		c := dial(t, client.Config{Addr: addrOf(srv), Filter: filter.CommandLine()})
		m, err := c.Request(testCtx(t), []byte("ADD 1  2\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Key != "ADD" || string(m.Body) != "1  2" || fmt.Sprint(m.Params()) != "[1 2]" {
			t.Fatalf("key %q body %q params %q", m.Key, m.Body, m.Params())
		}
	})
	t.Run("CountSplitter", func(t *testing.T) {
		fac := filter.CountSplitter('#', 4)
		srv := startServer(t, fac, echoFrame)
		c := dial(t, client.Config{Addr: addrOf(srv), Filter: fac})
		m, err := c.Request(testCtx(t), []byte("#ADD##2#"))
		if err != nil {
			t.Fatal(err)
		}
		// Params keeps the empty parameter, as the filter's own Request does.
		if m.Key != "ADD" || fmt.Sprintf("%q", m.Params()) != `["" "2"]` {
			t.Fatalf("key %q params %q", m.Key, m.Params())
		}
	})
	t.Run("HTTPHeader", func(t *testing.T) {
		fac := filter.HTTPHeader()
		srv := startServer(t, fac, echoFrame)
		c := dial(t, client.Config{Addr: addrOf(srv), Filter: fac})
		m, err := c.Request(testCtx(t), []byte("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"))
		if err != nil {
			t.Fatal(err)
		}
		line, fields, err := filter.ParseHeader(m.Header)
		if err != nil || line != "POST /x HTTP/1.1" || fields.Get("Content-Length") != "5" || string(m.Body) != "hello" || m.Key != "POST" {
			t.Fatalf("key %q line %q fields %v body %q err %v", m.Key, line, fields, m.Body, err)
		}
	})
}
