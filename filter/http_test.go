package filter

import (
	"errors"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestHTTPHeader(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	const post = "POST /a HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc"
	runCases(t, HTTPHeader(), []filterCase{
		{name: "get", limit: 100, in: get, want: []event{req("GET", "GET / HTTP/1.1\r\nHost: x", "", get)}},
		{name: "post then get", limit: 100, in: post + get + "PU",
			want: []event{req("POST", "POST /a HTTP/1.1\r\ncontent-length: 3", "abc", post), req("GET", "GET / HTTP/1.1\r\nHost: x", "", get)}, rest: "PU"},
		{name: "body incomplete", limit: 100, in: post[:len(post)-1], rest: post[:len(post)-1]},
		{name: "content-length zero", limit: 100, in: "PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
			want: []event{req("PUT", "PUT / HTTP/1.1\r\nContent-Length: 0", "", "PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")}},
		{name: "whitespace around value", limit: 100, in: "P / H\r\nCONTENT-LENGTH:\t 2 \r\n\r\nxy",
			want: []event{req("P", "P / H\r\nCONTENT-LENGTH:\t 2 ", "xy", "P / H\r\nCONTENT-LENGTH:\t 2 \r\n\r\nxy")}},
		{name: "repeated equal lengths", limit: 100, in: "P / H\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz",
			want: []event{req("P", "P / H\r\nContent-Length: 1\r\nContent-Length: 1", "z", "P / H\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz")}},
		{name: "method only", limit: 100, in: "PING\r\n\r\n", want: []event{req("PING", "PING", "", "PING\r\n\r\n")}},
		{name: "empty block", limit: 100, in: "\r\n\r\n", want: []event{req("", "", "", "\r\n\r\n")}},
		{name: "other fields ignored", limit: 100, in: "G / H\r\nX-Content-Length: 5\r\nContent-Lengthy: 5\r\n\r\n",
			want: []event{req("G", "G / H\r\nX-Content-Length: 5\r\nContent-Lengthy: 5", "", "G / H\r\nX-Content-Length: 5\r\nContent-Lengthy: 5\r\n\r\n")}},
		{name: "folded other field", limit: 100, in: "G / H\r\nA: 1\r\n 2\r\nContent-Length: 1\r\n\r\nq",
			want: []event{req("G", "G / H\r\nA: 1\r\n 2\r\nContent-Length: 1", "q", "G / H\r\nA: 1\r\n 2\r\nContent-Length: 1\r\n\r\nq")}},
		{name: "garbage length", limit: 100, in: "P / H\r\nContent-Length: x\r\n\r\n", want: []event{fail(ErrMalformed)}},
		{name: "negative length", limit: 100, in: "P / H\r\nContent-Length: -1\r\n\r\n", want: []event{fail(ErrMalformed)}},
		{name: "signed length", limit: 100, in: "P / H\r\nContent-Length: +1\r\n\r\nx", want: []event{fail(ErrMalformed)}},
		{name: "empty length", limit: 100, in: "P / H\r\nContent-Length:\r\n\r\n", want: []event{fail(ErrMalformed)}},
		{name: "two numbers", limit: 100, in: "P / H\r\nContent-Length: 1 2\r\n\r\n", want: []event{fail(ErrMalformed)}},
		{name: "list of lengths", limit: 100, in: "P / H\r\nContent-Length: 1,1\r\n\r\n", want: []event{fail(ErrMalformed)}},
		{name: "conflicting lengths", limit: 100, in: "P / H\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", want: []event{fail(ErrMalformed)}},
		{name: "folded length", limit: 100, in: "P / H\r\nContent-Length: 1\r\n 2\r\n\r\n", want: []event{fail(ErrMalformed)}},
		{name: "space before colon", limit: 100, in: "P / H\r\nContent-Length : 1\r\n\r\nx", want: []event{fail(ErrMalformed)}},
		{name: "huge length with only the header", limit: 100, in: "P / H\r\nContent-Length: 99999999999999999999999999\r\n\r\n", want: []event{fail(ErrTooLarge)}},
		// "P / H\r\nContent-Length: 3\r\n\r\n" is 28 bytes, so the body may be 3 at limit 31.
		{name: "limit-1", limit: 31, in: "P / H\r\nContent-Length: 2\r\n\r\nab",
			want: []event{req("P", "P / H\r\nContent-Length: 2", "ab", "P / H\r\nContent-Length: 2\r\n\r\nab")}},
		{name: "limit", limit: 31, in: "P / H\r\nContent-Length: 3\r\n\r\nabc",
			want: []event{req("P", "P / H\r\nContent-Length: 3", "abc", "P / H\r\nContent-Length: 3\r\n\r\nabc")}},
		{name: "limit+1 with only the header", limit: 31, in: "P / H\r\nContent-Length: 4\r\n\r\n", want: []event{fail(ErrTooLarge)}},
		{name: "header block at limit", limit: 9, in: "P / H\r\n\r\n", want: []event{req("P", "P / H", "", "P / H\r\n\r\n")}},
		{name: "header block over limit", limit: 9, in: "P / HT\r\n\r\n", want: []event{fail(ErrTooLarge)}},
		{name: "header block buffered to limit", limit: 9, in: "P / HTTP/", want: []event{fail(ErrTooLarge)}},
	})
}

func TestHTTPHeaderErrorNamesLimit(t *testing.T) {
	_, _, err := HTTPHeader()(50).Filter([]byte("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "1000") || !strings.Contains(err.Error(), "50") {
		t.Fatalf("err = %v, want ErrTooLarge naming the length 1000 and the limit 50", err)
	}
}

func TestHTTPHeaderAllocs(t *testing.T) {
	f := HTTPHeader()(1000)
	buf := repeat(10, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
	drain(f, buf)
	if n := testing.AllocsPerRun(100, func() { drain(f, buf) }); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

func TestParseHeader(t *testing.T) {
	line, fields, err := ParseHeader([]byte("GET /x HTTP/1.1\r\n" +
		"host: example.com\r\n" +
		"X-Multi:  a \r\n" +
		"x-multi: b\r\n" +
		"Folded: one\r\n" +
		"\t two\r\n" +
		"  three\r\n" +
		"Empty:\r\n" +
		" filled\n" +
		"Bare-LF: yes\n" +
		"\r\n" +
		"ignored: after blank"))
	if err != nil {
		t.Fatal(err)
	}
	if line != "GET /x HTTP/1.1" {
		t.Errorf("request line %q", line)
	}
	want := textproto.MIMEHeader{
		"Host":    {"example.com"},
		"X-Multi": {"a", "b"},
		"Folded":  {"one two three"},
		"Empty":   {"filled"},
		"Bare-Lf": {"yes"},
	}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("fields\n%v\nwant\n%v", fields, want)
	}

	// A block straight from HTTPHeader.
	r, _, _ := HTTPHeader()(100).Filter([]byte("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))
	line, fields, err = ParseHeader(r.Header)
	if err != nil || line != "POST / HTTP/1.1" || fields.Get("content-length") != "0" {
		t.Errorf("ParseHeader(%q) = %q %v %v", r.Header, line, fields, err)
	}

	line, fields, err = ParseHeader(nil)
	if err != nil || line != "" || len(fields) != 0 {
		t.Errorf("ParseHeader(nil) = %q %v %v", line, fields, err)
	}

	for _, bad := range []string{
		"GET / H\r\n continuation first",
		"GET / H\r\nno colon",
		"GET / H\r\n: empty name",
		"GET / H\r\nBad Name: x",
		"GET / H\r\nBad\x00: x",
	} {
		if _, _, err := ParseHeader([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeader(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzHTTPHeader(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /a HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc"), uint16(200), []byte{0, 5})
	f.Add([]byte("P / H\r\nContent-Length: 1\r\n 2\r\n\r\n"), uint16(100), []byte{1})
	f.Add([]byte("P / H\r\nContent-Length: 99999999999999999999\r\n\r\n"), uint16(100), []byte{})
	f.Add([]byte("P / H\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz\r\n\r\n"), uint16(30), []byte{2, 0})
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, chunks []byte) {
		limit1 := int(limit)%600 + 1
		data = fuzzInput(data)
		checkChunking(t, HTTPHeader(), limit1, data, chunkSizes(chunks))
		// Every header block the filter finds must be parseable without a panic, and a
		// Content-Length the filter framed by must be the one ParseHeader sees.
		evs, _ := feed(t, HTTPHeader()(limit1), data, whole)
		for _, e := range evs {
			if e.Err != nil {
				continue
			}
			_, fields, err := ParseHeader(e.Header)
			if err != nil {
				continue
			}
			if cl := fields.Values("Content-Length"); len(cl) > 0 && !sameNumber(cl[0], len(e.Body)) {
				t.Fatalf("Content-Length %q but a %d-byte body, header %q", cl, len(e.Body), e.Header)
			}
		}
	})
}

// sameNumber reports whether the decimal s has the value n.
func sameNumber(s string, n int) bool {
	v, err := strconv.Atoi(s)
	return err == nil && v == n
}

func BenchmarkHTTPHeader(b *testing.B) {
	buf := repeat(300,
		"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n",
		"POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world")
	benchFilter(b, HTTPHeader(), 4096, buf)
}
