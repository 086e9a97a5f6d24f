package filter

import (
	"reflect"
	"testing"
)

func TestCountSplitter(t *testing.T) {
	runCases(t, CountSplitter('#', 4), []filterCase{
		{name: "sample", limit: 100, in: "#ADD#1#2#", want: []event{req("ADD", "", "1#2", "#ADD#1#2#")}},
		{name: "no leading separator", limit: 100, in: "ADD#1#2#3#", want: []event{req("ADD", "", "1#2#3", "ADD#1#2#3#")}},
		{name: "empty params", limit: 100, in: "#ADD###", want: []event{req("ADD", "", "#", "#ADD###")}},
		{name: "all separators", limit: 100, in: "####", want: []event{req("", "", "#", "####")}},
		{name: "many and rest", limit: 100, in: "#A#1#2##B#3#4##C",
			want: []event{req("A", "", "1#2", "#A#1#2#"), req("B", "", "3#4", "#B#3#4#")}, rest: "#C"},
		{name: "waits for the last separator", limit: 100, in: "#ADD#1#2", rest: "#ADD#1#2"},
		{name: "limit-1", limit: 9, in: "#AD#1#2#", want: []event{req("AD", "", "1#2", "#AD#1#2#")}},
		{name: "limit", limit: 9, in: "#ADD#1#2#", want: []event{req("ADD", "", "1#2", "#ADD#1#2#")}},
		{name: "limit+1", limit: 9, in: "#ADD#1#22#", want: []event{fail(ErrTooLarge)}},
		{name: "limit buffered", limit: 9, in: "#ADD#1#22", want: []event{fail(ErrTooLarge)}},
		{name: "count over limit fails at once", limit: 3, in: "", want: []event{fail(ErrTooLarge)}},
	})
	runCases(t, CountSplitter('|', 1), []filterCase{
		{name: "n=1", limit: 100, in: "|abc|", want: []event{req("", "", "", "|"), req("abc", "", "", "abc|")}},
	})
	runCases(t, CountSplitter(0, 2), []filterCase{
		{name: "nul separator", limit: 100, in: "K\x00v\x00", want: []event{req("K", "", "v", "K\x00v\x00")}},
	})
}

func TestCountSplitterParams(t *testing.T) {
	f := CountSplitter('#', 5)(100)
	for _, c := range []struct {
		in   string
		key  string
		want []string
	}{
		{"#ADD#1#2#3#", "ADD", []string{"1", "2", "3"}},
		{"#SET##x##", "SET", []string{"", "x", ""}},
		{"#NOP####", "NOP", []string{"", "", ""}},
	} {
		r, n, err := f.Filter([]byte(c.in))
		if err != nil || n != len(c.in) {
			t.Fatalf("%q: n=%d err=%v", c.in, n, err)
		}
		if r.Key != c.key || !reflect.DeepEqual(r.Params(), c.want) {
			t.Fatalf("%q: Key %q Params %q, want %q %q", c.in, r.Key, r.Params(), c.key, c.want)
		}
	}
}

func TestCountSplitterAllocs(t *testing.T) {
	f := CountSplitter('#', 4)(100)
	buf := repeat(10, "#ADD#1#2#", "#SUB#3#4#")
	drain(f, buf)
	if n := testing.AllocsPerRun(100, func() { drain(f, buf) }); n != 0 {
		t.Fatalf("%v allocations per run over known keys, want 0", n)
	}
}

func TestCountSplitterPanics(t *testing.T) {
	mustPanic(t, "count 0", func() { CountSplitter('#', 0) })
}

func FuzzCountSplitter(f *testing.F) {
	f.Add([]byte("#ADD#1#2##SUB#3#4#"), byte('#'), uint8(4), uint16(100), []byte{0, 3})
	f.Add([]byte("########"), byte('#'), uint8(2), uint16(3), []byte{1})
	f.Add([]byte("a|b|c|d"), byte('|'), uint8(1), uint16(2), []byte{})
	f.Fuzz(func(t *testing.T, data []byte, sep byte, n uint8, limit uint16, chunks []byte) {
		checkChunking(t, CountSplitter(sep, int(n)%16+1), int(limit)%512+1, fuzzInput(data), chunkSizes(chunks))
	})
}

func BenchmarkCountSplitter(b *testing.B) {
	buf := repeat(1000, "#ADD#1#2#", "#SUBTRACT#100#200#", "#MUL#7#6#")
	benchFilter(b, CountSplitter('#', 4), 1024, buf)
}
