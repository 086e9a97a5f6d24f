package filter

import "bytes"

// CommandLine returns a Factory of filters for text command lines, the default protocol of
// SuperSocket's AppServer: "KEY param param\r\n".
//
// A line ends at "\n"; a "\r" just before it is dropped, so both "\r\n" and "\n" endings
// work. Key is the text before the first space (the whole line if it has none) and keeps
// its case; Body is everything after that space, verbatim; Frame is the line with its
// ending. Params splits Body on spaces, dropping empty parameters. Keys are interned per
// filter, so routing on Key costs no allocation once a stream has used its commands. A
// line, ending included, may be at most the factory's limit, else ErrTooLarge.
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
	req := Request{Frame: data[:end]}
	if sp := bytes.IndexByte(line, ' '); sp >= 0 {
		req.Key = f.keys.intern(line[:sp])
		req.Body = line[sp+1:]
	} else {
		req.Key = f.keys.intern(line)
		req.Body = line[len(line):]
	}
	return req, end, nil
}
