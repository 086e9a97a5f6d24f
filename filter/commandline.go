package filter

import (
	"bytes"
	"fmt"
)

// CommandLine returns a Factory of filters for text command lines, the default protocol of
// SuperSocket's AppServer: "KEY param param\r\n".
//
// A line ends at "\n"; a "\r" just before it is dropped, so both "\r\n" and "\n" endings
// work. Key is the text before the first space (the whole line if it has none) and keeps
// its case; Body is everything after that space, verbatim; Frame is the line with its
// ending. Params splits Body on spaces, dropping empty parameters. Keys are interned per
// filter, so routing on Key costs no allocation once a stream has used its commands. A
// line, ending included, may be at most the factory's limit, else ErrTooLarge. At the end
// of a message (a WebSocket message, a UDP datagram) a last line may lack its ending
// ([Finisher]).
func CommandLine() Factory {
	return func(limit int) Filter {
		return &commandLineFilter{scan: markScanner{mark: []byte{'\n'}}, limit: limit}
	}
}

type commandLineFilter struct {
	scan  markScanner
	limit int
	keys  keyCache
}

// Filter implements [Filter].
func (f *commandLineFilter) Filter(data []byte) (Request, int, error) {
	end, err := f.scan.find(data, 0, f.limit, "line ending")
	if end == 0 || err != nil {
		return Request{}, 0, err
	}
	line := data[:end-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return f.request(line, data[:end]), end, nil
}

// Finish implements [Finisher]: the bytes at the end of a message, without a line
// ending, are its last line ("ECHO hello" typed into a browser's WebSocket).
func (f *commandLineFilter) Finish(data []byte) (Request, int, error) {
	f.scan.reset()
	if len(data) > f.limit {
		return Request{}, 0, fmt.Errorf("%w: a %d-byte line (the limit is %d)", ErrTooLarge, len(data), f.limit)
	}
	line := data
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return f.request(line, data), len(data), nil
}

// request splits a line into key and body.
func (f *commandLineFilter) request(line, frame []byte) Request {
	req := Request{Frame: frame}
	if sp := bytes.IndexByte(line, ' '); sp >= 0 {
		req.Key = f.keys.intern(line[:sp])
		req.Body = line[sp+1:]
	} else {
		req.Key = f.keys.intern(line)
		req.Body = line[len(line):]
	}
	return req
}
