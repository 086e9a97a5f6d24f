package filter

import "testing"

func TestFixedSize(t *testing.T) {
	runCases(t, FixedSize(3), []filterCase{
		{name: "one", limit: 100, in: "abc", want: []event{req("", "", "abc", "abc")}},
		{name: "many and rest", limit: 100, in: "abcdefg", want: []event{req("", "", "abc", "abc"), req("", "", "def", "def")}, rest: "g"},
		{name: "short", limit: 100, in: "ab", rest: "ab"},
		{name: "size at limit-1", limit: 4, in: "abcd", want: []event{req("", "", "abc", "abc")}, rest: "d"},
		{name: "limit", limit: 3, in: "abc", want: []event{req("", "", "abc", "abc")}},
		{name: "over limit fails at once", limit: 2, in: "", want: []event{fail(ErrTooLarge)}},
		{name: "over limit with data", limit: 2, in: "abc", want: []event{fail(ErrTooLarge)}},
	})
	runCases(t, FixedSize(1), []filterCase{
		{name: "size 1", limit: 1, in: "xy", want: []event{req("", "", "x", "x"), req("", "", "y", "y")}},
	})
}

func TestFixedSizePanics(t *testing.T) {
	mustPanic(t, "size 0", func() { FixedSize(0) })
	mustPanic(t, "size -1", func() { FixedSize(-1) })
}

func FuzzFixedSize(f *testing.F) {
	f.Add([]byte("abcdefghij"), uint8(3), uint16(10), []byte{1, 2})
	f.Add([]byte("ab"), uint8(3), uint16(2), []byte{0})
	f.Fuzz(func(t *testing.T, data []byte, size uint8, limit uint16, chunks []byte) {
		checkChunking(t, FixedSize(int(size)%64+1), int(limit)%128+1, fuzzInput(data), chunkSizes(chunks))
	})
}

func BenchmarkFixedSize(b *testing.B) {
	buf := repeat(4000, "0123456789abcdef")
	benchFilter(b, FixedSize(16), 1024, buf)
}
