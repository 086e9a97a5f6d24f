package filter

import (
	"errors"
	"math"
	"testing"
)

func TestLengthPrefixedShorthands(t *testing.T) {
	runCases(t, Uint16BE(), []filterCase{
		{name: "frames", limit: 100, in: "\x00\x03abc\x00\x00\x00\x01x\x00",
			want: []event{req("", "\x00\x03", "abc", "\x00\x03abc"), req("", "\x00\x00", "", "\x00\x00"), req("", "\x00\x01", "x", "\x00\x01x")}, rest: "\x00"},
		{name: "limit-1", limit: 5, in: "\x00\x02ab", want: []event{req("", "\x00\x02", "ab", "\x00\x02ab")}},
		{name: "limit", limit: 5, in: "\x00\x03abc", want: []event{req("", "\x00\x03", "abc", "\x00\x03abc")}},
		{name: "limit+1", limit: 5, in: "\x00\x04abcd", want: []event{fail(ErrTooLarge)}},
		{name: "huge with only the header", limit: 100, in: "\xff\xff", want: []event{fail(ErrTooLarge)}},
		{name: "big endian, not little", limit: 300, in: "\x01\x00", rest: "\x01\x00"},
	})
	runCases(t, Uint16LE(), []filterCase{
		{name: "frames", limit: 100, in: "\x03\x00abc\x00\x00", want: []event{req("", "\x03\x00", "abc", "\x03\x00abc"), req("", "\x00\x00", "", "\x00\x00")}},
		{name: "huge with only the header", limit: 100, in: "\x00\x01", want: []event{fail(ErrTooLarge)}},
	})
	runCases(t, Uint32BE(), []filterCase{
		{name: "frames", limit: 100, in: "\x00\x00\x00\x02ab\x00\x00\x00\x00", want: []event{req("", "\x00\x00\x00\x02", "ab", "\x00\x00\x00\x02ab"), req("", "\x00\x00\x00\x00", "", "\x00\x00\x00\x00")}},
		{name: "huge with only the header", limit: 1 << 20, in: "\xff\xff\xff\xff", want: []event{fail(ErrTooLarge)}},
	})
	runCases(t, Uint32LE(), []filterCase{
		{name: "frames", limit: 100, in: "\x02\x00\x00\x00ab", want: []event{req("", "\x02\x00\x00\x00", "ab", "\x02\x00\x00\x00ab")}},
		{name: "limit", limit: 6, in: "\x02\x00\x00\x00ab", want: []event{req("", "\x02\x00\x00\x00", "ab", "\x02\x00\x00\x00ab")}},
		{name: "limit+1", limit: 6, in: "\x03\x00\x00\x00abc", want: []event{fail(ErrTooLarge)}},
	})
}

func TestLengthPrefixed(t *testing.T) {
	// A 6-byte header: a 2-byte type, then a big-endian uint32 total frame size.
	total := LengthPrefixed(LengthField{HeaderSize: 6, Offset: 2, Size: 4, IncludesHeader: true})
	runCases(t, total, []filterCase{
		{name: "total", limit: 100, in: "AB\x00\x00\x00\x09xyzCD\x00\x00\x00\x06",
			want: []event{req("", "AB\x00\x00\x00\x09", "xyz", "AB\x00\x00\x00\x09xyz"), req("", "CD\x00\x00\x00\x06", "", "CD\x00\x00\x00\x06")}},
		{name: "total shorter than header", limit: 100, in: "AB\x00\x00\x00\x05", want: []event{fail(ErrMalformed)}},
		{name: "total zero", limit: 100, in: "AB\x00\x00\x00\x00", want: []event{fail(ErrMalformed)}},
		{name: "limit", limit: 9, in: "AB\x00\x00\x00\x09xyz", want: []event{req("", "AB\x00\x00\x00\x09", "xyz", "AB\x00\x00\x00\x09xyz")}},
		{name: "limit+1", limit: 9, in: "AB\x00\x00\x00\x0a", want: []event{fail(ErrTooLarge)}},
	})
	// Field in the middle of a larger header, counting the body only.
	mid := LengthPrefixed(LengthField{HeaderSize: 4, Offset: 1, Size: 1})
	runCases(t, mid, []filterCase{
		{name: "mid", limit: 100, in: "T\x02..ab", want: []event{req("", "T\x02..", "ab", "T\x02..ab")}},
	})
	u64 := LengthPrefixed(LengthField{Size: 8})
	u64total := LengthPrefixed(LengthField{Size: 8, LittleEndian: true, IncludesHeader: true})
	runCases(t, u64, []filterCase{
		{name: "8 bytes", limit: 100, in: "\x00\x00\x00\x00\x00\x00\x00\x01z", want: []event{req("", "\x00\x00\x00\x00\x00\x00\x00\x01", "z", "\x00\x00\x00\x00\x00\x00\x00\x01z")}},
		{name: "max uint64", limit: 100, in: "\xff\xff\xff\xff\xff\xff\xff\xff", want: []event{fail(ErrTooLarge)}},
		{name: "max int + 1", limit: 100, in: "\x80\x00\x00\x00\x00\x00\x00\x00", want: []event{fail(ErrTooLarge)}},
		{name: "max int", limit: 100, in: "\x7f\xff\xff\xff\xff\xff\xff\xff", want: []event{fail(ErrTooLarge)}},
	})
	runCases(t, u64total, []filterCase{
		{name: "total", limit: 100, in: "\x09\x00\x00\x00\x00\x00\x00\x00z", want: []event{req("", "\x09\x00\x00\x00\x00\x00\x00\x00", "z", "\x09\x00\x00\x00\x00\x00\x00\x00z")}},
		{name: "max uint64 total", limit: 100, in: "\xff\xff\xff\xff\xff\xff\xff\xff", want: []event{fail(ErrTooLarge)}},
		{name: "short total", limit: 100, in: "\x07\x00\x00\x00\x00\x00\x00\x00", want: []event{fail(ErrMalformed)}},
	})
	_, _, err := u64(math.MaxInt).Filter([]byte("\xff\xff\xff\xff\xff\xff\xff\xff"))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("max uint64 at the largest limit: %v, want ErrTooLarge", err)
	}
	_, _, err = u64(math.MaxInt).Filter([]byte("\x7f\xff\xff\xff\xff\xff\xff\xff"))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MaxInt body at the largest limit: %v, want ErrTooLarge (header + body overflows)", err)
	}
}

func TestLengthFieldPanics(t *testing.T) {
	for _, c := range []struct {
		f    LengthField
		want string
	}{
		{LengthField{}, "Size 0"},
		{LengthField{Size: 3}, "Size 3"},
		{LengthField{Size: 16}, "Size 16"},
		{LengthField{Size: 2, Offset: -1}, "negative Offset"},
		{LengthField{Size: 2, HeaderSize: -2}, "negative HeaderSize"},
		{LengthField{Size: 4, HeaderSize: 3}, "HeaderSize 3"},
		{LengthField{Size: 2, Offset: 2, HeaderSize: 3}, "offset 2"},
		{LengthField{Size: 8, Offset: math.MaxInt - 4}, "Offset"},
	} {
		mustPanic(t, c.want, func() { LengthPrefixed(c.f) })
	}
}

func FuzzLengthPrefixed(f *testing.F) {
	f.Add([]byte("\x00\x03abc\x00\x00\x00\x01x"), uint8(1), uint8(0), uint8(0), false, false, uint16(100), []byte{0})
	f.Add([]byte("AB\x00\x00\x00\x09xyzCD\x00\x00\x00\x05"), uint8(2), uint8(2), uint8(0), false, true, uint16(100), []byte{1, 3})
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff"), uint8(3), uint8(0), uint8(0), true, true, uint16(50), []byte{})
	f.Add([]byte("\x03\x00\x00\x00abc"), uint8(2), uint8(0), uint8(3), true, false, uint16(8), []byte{2})
	f.Fuzz(func(t *testing.T, data []byte, sizeSel, offset, extra uint8, le, incl bool, limit uint16, chunks []byte) {
		spec := LengthField{Size: 1 << (sizeSel % 4), Offset: int(offset % 8), LittleEndian: le, IncludesHeader: incl}
		if extra%2 == 1 { // sometimes an explicit, larger header
			spec.HeaderSize = spec.Offset + spec.Size + int(extra%8)
		}
		checkChunking(t, LengthPrefixed(spec), int(limit)%512+1, fuzzInput(data), chunkSizes(chunks))
	})
}

func BenchmarkLengthPrefixed(b *testing.B) {
	buf := repeat(1000, "\x00\x00\x00\x05hello", "\x00\x00\x00\x00", "\x00\x00\x00\x1athe quick brown fox jumps!")
	benchFilter(b, Uint32BE(), 1024, buf)
}
