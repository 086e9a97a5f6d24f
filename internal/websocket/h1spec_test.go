package websocket

import (
	"strings"
	"testing"
)

// h1spec (github.com/uNetworking/h1spec, http_test.ts) checks an HTTP/1.1 server with 33
// raw requests. Here they check the upgrade request's parser, ParseRequest, which reads
// the head of the only request a WebSocket listener serves. Its expectations translate:
//
//   - "the server waits" (a fragment of a request): ParseRequest asks for more bytes;
//   - a 2xx (or 100) status: ParseRequest accepts the head (whether it is an upgrade is
//     CheckUpgrade's business, tested on its own);
//   - a 4xx or 5xx range: ParseRequest refuses it with a status in that range.
//
// Two cases differ on purpose: h1spec expects a POST with a body, and a chunked one, to
// be served (2xx); an upgrade request has no body, so the parser refuses both with 400
// (RFC 6455 §4.1: the handshake is a GET; a body would be read as the first frames).
func TestParseRequest_H1Spec(t *testing.T) {
	const (
		waits   = 0  // ParseRequest asks for more bytes
		accepts = -1 // ParseRequest accepts the head
	)
	cases := []struct {
		request string
		desc    string
		want    int           // waits, accepts, or 1: refused
		ranges  []statusRange // the h1spec ranges a refusal's status must fall in
	}{
		{"G", "Fragmented method", waits, nil},
		{"GET ", "Fragmented URL 1", waits, nil},
		{"GET /hello", "Fragmented URL 2", waits, nil},
		{"GET /hello ", "Fragmented URL 3", waits, nil},
		{"GET /hello HTTP", "Fragmented HTTP version", waits, nil},
		{"GET /hello HTTP/1.1", "Fragmented request line", waits, nil},
		{"GET /hello HTTP/1.1\r", "Fragmented request line newline 1", waits, nil},
		{"GET /hello HTTP/1.1\r\n", "Fragmented request line newline 2", waits, nil},
		{"GET /hello HTTP/1.1\r\nHos", "Fragmented field name", waits, nil},
		{"GET /hello HTTP/1.1\r\nHost:", "Fragmented field value 1", waits, nil},
		{"GET /hello HTTP/1.1\r\nHost: ", "Fragmented field value 2", waits, nil},
		{"GET /hello HTTP/1.1\r\nHost: localhost", "Fragmented field value 3", waits, nil},
		{"GET /hello HTTP/1.1\r\nHost: localhost\r", "Fragmented field value 4", waits, nil},
		{"GET /hello HTTP/1.1\r\nHost: localhost\r\n", "Fragmented request", waits, nil},
		{"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r", "Fragmented request termination", waits, nil},
		{"GET / \r\n\r\n", "Request without HTTP version", 1, []statusRange{{400, 599}}},
		{"GET / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\n\r\n", "Request with Expect header", accepts, nil},
		{"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "Valid GET request", accepts, nil},
		{"GET / HTTP/1.1\r\nhoSt:\texample.com\r\nempty:\r\n\r\n", "Valid GET request with edge cases", accepts, nil},
		{"GET / HTTP/1.1\r\nHost: example.com\r\nX-Invalid[]: test\r\n\r\n", "Invalid header characters", 1, []statusRange{{400, 499}}},
		{"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", "Missing Host header", 1, []statusRange{{400, 499}}},
		{"GET / HTTP/1.1\r\nHost: example.com\r\nHost: example.org\r\n\r\n", "Multiple Host headers", 1, []statusRange{{400, 499}}},
		{"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: -123456789123456789123456789\r\n\r\n",
			"Overflowing negative Content-Length header", 1, []statusRange{{400, 499}}},
		{"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: -1234\r\n\r\n", "Negative Content-Length header", 1,
			[]statusRange{{400, 499}}},
		{"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: abc\r\n\r\n", "Non-numeric Content-Length header", 1,
			[]statusRange{{400, 499}}},
		{"GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty-Header: \r\n\r\n", "Empty header value", accepts, nil},
		{"GET / HTTP/1.1\r\nHost: example.com\r\nX-Bad-Control-Char: test\x07\r\n\r\n",
			"Header containing invalid control character", 1, []statusRange{{400, 499}}},
		{"GET / HTTP/9.9\r\nHost: example.com\r\n\r\n", "Invalid HTTP version", 1, []statusRange{{400, 499}, {500, 599}}},
		{"Extra lineGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "Invalid prefix of request", 1,
			[]statusRange{{400, 499}, {500, 599}}},
		{"GET / HTTP/1.1\r\nHost: example.com\r\n\rSome-Header: Test\r\n\r\n", "Invalid line ending", 1, []statusRange{{400, 499}}},
		// h1spec: 2xx or 404 with the body echoed. An upgrade request has no body: 400.
		{"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello", "Valid POST request with body", 1,
			[]statusRange{{400, 400}}},
		// h1spec: 2xx with the chunked body. An upgrade request has no body: 400.
		{"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nc\r\nHellO world1\r\n0\r\n\r\n",
			"Chunked Transfer-Encoding", 1, []statusRange{{400, 400}}},
		{"POST / HTTP/1.1\r\nHost: example.com\r\ncontent-LengtH: 5\r\nTransFer-Encoding: chunked\r\n\r\nc\r\nHellO world1\r\n0\r\n\r\n",
			"Conflicting Transfer-Encoding and Content-Length in varying case", 1, []statusRange{{400, 499}}},
	}
	if len(cases) != 33 {
		t.Fatalf("%d cases; h1spec has 33", len(cases))
	}
	for _, tc := range cases {
		req, n, herr := ParseRequest([]byte(tc.request), 8192)
		switch {
		case tc.want == waits:
			if req != nil || n != 0 || herr != nil {
				t.Errorf("%s: %+v, %d, %v; want a wait for more bytes", tc.desc, req, n, herr)
			}
		case tc.want == accepts:
			if herr != nil || req == nil || n != len(tc.request) {
				t.Errorf("%s: n %d, %v; want the %d-byte head accepted", tc.desc, n, herr, len(tc.request))
			}
		default:
			if req != nil || herr == nil || !inRanges(herr.Status, tc.ranges) {
				t.Errorf("%s: %v; want a refusal in %v", tc.desc, herr, tc.ranges)
			}
		}
	}

	// The accepted edge cases are read as meant: the field name's case and the tab
	// before the value do not matter, an empty value is a value.
	req, _, herr := ParseRequest([]byte("GET / HTTP/1.1\r\nhoSt:\texample.com\r\nempty:\r\n\r\n"), 8192)
	if herr != nil || strings.Join(req.Header()["Host"], ",") != "example.com" || len(req.Header()["Empty"]) != 1 || req.Header()["Empty"][0] != "" {
		t.Errorf("edge cases: %+v, %v", req, herr)
	}
}

// statusRange is a range of HTTP statuses, both ends included.
type statusRange struct{ lo, hi int }

// inRanges reports whether status falls in one of the ranges.
func inRanges(status int, ranges []statusRange) bool {
	for _, r := range ranges {
		if status >= r.lo && status <= r.hi {
			return true
		}
	}
	return false
}
