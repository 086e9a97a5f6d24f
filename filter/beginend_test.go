package filter

import (
	"errors"
	"testing"
)

func TestBeginEndMark(t *testing.T) {
	runCases(t, BeginEndMark([]byte("<<"), []byte(">>")), []filterCase{
		{name: "one", limit: 100, in: "<<abc>>", want: []event{req("", "", "abc", "<<abc>>")}},
		{name: "empty body", limit: 100, in: "<<>>", want: []event{req("", "", "", "<<>>")}},
		{name: "many and rest", limit: 100, in: "<<a>><<b>><<c", want: []event{req("", "", "a", "<<a>>"), req("", "", "b", "<<b>>")}, rest: "<<c"},
		{name: "partial end mark is body", limit: 100, in: "<<a>b>>", want: []event{req("", "", "a>b", "<<a>b>>")}},
		{name: "partial begin waits", limit: 100, in: "<", rest: "<"},
		{name: "bad first byte fails at once", limit: 100, in: "x", want: []event{fail(ErrMalformed)}},
		{name: "bad partial begin", limit: 100, in: "<x", want: []event{fail(ErrMalformed)}},
		{name: "bad begin after a frame", limit: 100, in: "<<a>>x<<b>>", want: []event{req("", "", "a", "<<a>>"), fail(ErrMalformed)}},
		{name: "limit-1", limit: 7, in: "<<ab>>", want: []event{req("", "", "ab", "<<ab>>")}},
		{name: "limit", limit: 7, in: "<<abc>>", want: []event{req("", "", "abc", "<<abc>>")}},
		{name: "limit+1", limit: 7, in: "<<abcd>>", want: []event{fail(ErrTooLarge)}},
		{name: "limit buffered without end", limit: 7, in: "<<abcde", want: []event{fail(ErrTooLarge)}},
		{name: "under limit waits", limit: 7, in: "<<abcd", rest: "<<abcd"},
		{name: "marks alone at limit", limit: 4, in: "<<>>", want: []event{req("", "", "", "<<>>")}},
		{name: "marks over limit fail at once", limit: 3, in: "", want: []event{fail(ErrTooLarge)}},
	})
	// Identical marks: the end mark is searched for only after the begin mark.
	runCases(t, BeginEndMark([]byte("##"), []byte("##")), []filterCase{
		{name: "same marks", limit: 100, in: "####", want: []event{req("", "", "", "####")}},
		{name: "overlap is not a frame", limit: 100, in: "###", rest: "###"},
		{name: "same marks with body", limit: 100, in: "##a####b##", want: []event{req("", "", "a", "##a##"), req("", "", "b", "##b##")}},
	})
	// The SwitchReceiveFilter sample's protocol A: 'Y' ... 0x00 0xff.
	runCases(t, BeginEndMark([]byte("Y"), []byte{0x00, 0xff}), []filterCase{
		{name: "binary end", limit: 100, in: "Yab\x00c\x00\xff", want: []event{req("", "", "ab\x00c", "Yab\x00c\x00\xff")}},
	})
}

func TestBeginEndMarkErrors(t *testing.T) {
	f := BeginEndMark([]byte("<<"), []byte(">>"))(100)
	if _, _, err := f.Filter([]byte("x")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("one wrong byte: %v, want ErrMalformed at once", err)
	}
}

func TestBeginEndMarkPanics(t *testing.T) {
	mustPanic(t, "empty begin", func() { BeginEndMark(nil, []byte("x")) })
	mustPanic(t, "empty end", func() { BeginEndMark([]byte("x"), nil) })
}

func FuzzBeginEndMark(f *testing.F) {
	f.Add([]byte("<<abc>><<>><<a>b>>"), []byte("<<"), []byte(">>"), uint16(100), []byte{0, 2})
	f.Add([]byte("####a####"), []byte("##"), []byte("##"), uint16(6), []byte{1})
	f.Add([]byte("Yab\x00\xff*x#"), []byte("Y"), []byte("\x00\xff"), uint16(5), []byte{})
	f.Add([]byte("<x"), []byte("<<"), []byte(">>"), uint16(100), []byte{})
	f.Fuzz(func(t *testing.T, data, begin, end []byte, limit uint16, chunks []byte) {
		if len(begin) == 0 || len(end) == 0 {
			return
		}
		begin, end = begin[:min(len(begin), 4)], end[:min(len(end), 4)]
		checkChunking(t, BeginEndMark(begin, end), int(limit)%512+1, fuzzInput(data), chunkSizes(chunks))
	})
}

func BenchmarkBeginEndMark(b *testing.B) {
	buf := repeat(1000, "Yhello world\x00\xff", "Y\x00\xff", "Ythe quick brown fox jumps over\x00\xff")
	benchFilter(b, BeginEndMark([]byte("Y"), []byte{0x00, 0xff}), 1024, buf)
}
