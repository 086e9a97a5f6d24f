package filter_test

import (
	"encoding/binary"
	"fmt"

	"github.com/supersocket-go/supersocket/filter"
)

// receive plays the server: it appends each read to a pending buffer and asks the filter
// for requests until it wants more bytes.
func receive(f filter.Filter, reads ...string) {
	var pending []byte
	for _, read := range reads {
		pending = append(pending, read...)
		for {
			req, n, err := f.Filter(pending)
			if err != nil {
				fmt.Println("error:", err)
				return
			}
			if n == 0 {
				break
			}
			fmt.Printf("key=%q header=%q body=%q\n", req.Key, req.Header, req.Body)
			pending = pending[n:]
		}
	}
	if len(pending) > 0 {
		fmt.Printf("waiting with %q\n", pending)
	}
}

func ExampleTerminator() {
	f := filter.Terminator([]byte("\r\n"))(1024)
	// Two requests and a half arrive in two reads, split inside a terminator.
	receive(f, "hello\r\nwor", "ld\r", "\nand")
	// Output:
	// key="" header="" body="hello"
	// key="" header="" body="world"
	// waiting with "and"
}

func ExampleCommandLine() {
	f := filter.CommandLine()(1024)
	data := []byte("ADD 1  2\r\n")
	req, n, _ := f.Filter(data)
	fmt.Printf("%d bytes: key %q, body %q, params %q\n", n, req.Key, req.Body, req.Params())
	// Output:
	// 10 bytes: key "ADD", body "1  2", params ["1" "2"]
}

func ExampleLengthPrefixed() {
	// A 6-byte header: a 2-byte message type, then the whole frame's size as a
	// big-endian uint32.
	fac := filter.LengthPrefixed(filter.LengthField{HeaderSize: 6, Offset: 2, Size: 4, IncludesHeader: true})
	frame := binary.BigEndian.AppendUint32([]byte("MT"), 6+5)
	frame = append(frame, "hello"...)
	receive(fac(1024), string(frame[:3]), string(frame[3:]))

	// Declaring more than the limit fails as soon as the header is in.
	huge := binary.BigEndian.AppendUint32([]byte("MT"), 1<<30)
	receive(fac(1024), string(huge))
	// Output:
	// key="" header="MT\x00\x00\x00\v" body="hello"
	// error: filter: request too large: 6-byte header declares a 1073741818-byte body, over the limit of 1024 bytes per frame
}

func ExampleUint16BE() {
	receive(filter.Uint16BE()(1024), "\x00\x05hello\x00\x00\x00\x03abc")
	// Output:
	// key="" header="\x00\x05" body="hello"
	// key="" header="\x00\x00" body=""
	// key="" header="\x00\x03" body="abc"
}

func ExampleFixedHeader() {
	// A 3-byte header: a command byte and a little-endian uint16 body length.
	fac := filter.FixedHeader(3, func(h []byte) (int, error) {
		return int(binary.LittleEndian.Uint16(h[1:])), nil
	})
	receive(fac(1024), "P\x04\x00ping", "Q\x00\x00")
	// Output:
	// key="" header="P\x04\x00" body="ping"
	// key="" header="Q\x00\x00" body=""
}

func ExampleBeginEndMark() {
	f := filter.BeginEndMark([]byte("!<"), []byte(">!"))(1024)
	receive(f, "!<first>!!<sec", "ond>!", "junk")
	// Output:
	// key="" header="" body="first"
	// key="" header="" body="second"
	// error: filter: malformed request: frame starts with "ju", not the begin mark "!<"
}

func ExampleCountSplitter() {
	f := filter.CountSplitter('#', 4)(1024)
	req, _, _ := f.Filter([]byte("#ADD#1#2#"))
	fmt.Printf("key %q, body %q, params %q\n", req.Key, req.Body, req.Params())
	// Output:
	// key "ADD", body "1#2", params ["1" "2"]
}

func ExampleHTTPHeader() {
	f := filter.HTTPHeader()(4096)
	req, _, _ := f.Filter([]byte("POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello"))
	line, fields, _ := filter.ParseHeader(req.Header)
	fmt.Printf("%s | %s | host %s | body %q\n", req.Key, line, fields.Get("Host"), req.Body)
	// Output:
	// POST | POST /echo HTTP/1.1 | host example.com | body "hello"
}

func ExampleSwitch() {
	// SuperSocket's SwitchReceiveFilter sample: frames of two protocols on one stream,
	// told apart by their first byte.
	fac := filter.Switch(map[byte]filter.Factory{
		'Y': filter.BeginEndMark([]byte("Y"), []byte{0x00, 0xff}),
		'*': filter.BeginEndMark([]byte("*"), []byte("#")),
	})
	receive(fac(1024), "Yabc\x00\xff*x#", "Y", "de\x00\xff?")
	// Output:
	// key="" header="" body="abc"
	// key="" header="" body="x"
	// key="" header="" body="de"
	// error: filter: malformed request: no filter for first byte 0x3f
}
