package loadgen

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		proto, prefix string
		size          int
	}{{"line", "", 1}, {"line", "ECHO ", 16}, {"len", "", 7}, {"len", "", 4096}, {"echo", "", 64}, {"echo", "", 65530}} {
		cd, err := newCodec(tc.proto, tc.prefix, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		req := make([]byte, cd.reqLen)
		for _, seq := range []uint64{0, 1, 60, 61, 1 << 20} {
			cd.putRequest(req, 7, seq)
			rep := echoOf(cd, req)
			if !cd.replyOK(rep, 7, seq) {
				t.Errorf("%+v seq %d: the server's echo is refused", tc, seq)
			}
			if cd.replyOK(rep, 7, seq+1) {
				t.Errorf("%+v seq %d: accepted as seq+1", tc, seq)
			}
			if tc.size >= stampDigits && cd.replyOK(rep, 8, seq) {
				t.Errorf("%+v: accepted on another connection", tc)
			}
			if tc.proto == "line" && bytes.ContainsAny(rep[:cd.size], " \r\n") {
				t.Errorf("line payload holds a space or line break: %q", rep)
			}
			for _, i := range []int{0, len(rep) / 2, len(rep) - 1} {
				bad := slices.Clone(rep)
				bad[i] ^= 1
				if cd.replyOK(bad, 7, seq) {
					t.Errorf("%+v seq %d: a flipped byte %d is accepted", tc, seq, i)
				}
				if msg := cd.describeMismatch(bad, 7, seq); !strings.Contains(msg, "byte "+strconv.Itoa(i)) {
					t.Errorf("describeMismatch = %q, want byte %d", msg, i)
				}
			}
		}
	}
}

// echoOf is what a correct server answers to req.
func echoOf(cd *codec, req []byte) []byte {
	switch cd.proto {
	case protoLine:
		return slices.Clone(req[len(cd.prefix):])
	case protoEcho:
		rep := slices.Clone(req)
		rep[4] = 0
		return rep
	default:
		return slices.Clone(req)
	}
}
