package filter

import (
	"errors"
	"testing"
)

// sample is SuperSocket's SwitchReceiveFilter sample: 'Y' ... 0x00 0xff frames and
// '*' ... '#' frames on one connection.
func sample() Factory {
	return Switch(map[byte]Factory{
		'Y': BeginEndMark([]byte("Y"), []byte{0x00, 0xff}),
		'*': BeginEndMark([]byte("*"), []byte("#")),
	})
}

func TestSwitch(t *testing.T) {
	runCases(t, sample(), []filterCase{
		{name: "both protocols", limit: 100, in: "Yabc\x00\xff*x#*#Y\x00\xff*y",
			want: []event{req("", "", "abc", "Yabc\x00\xff"), req("", "", "x", "*x#"), req("", "", "", "*#"), req("", "", "", "Y\x00\xff")}, rest: "*y"},
		{name: "sub-filter keeps the stream", limit: 100, in: "Y*#\x00\xff", want: []event{req("", "", "*#", "Y*#\x00\xff")}},
		{name: "unknown first byte", limit: 100, in: "Ya\x00\xffZ", want: []event{req("", "", "a", "Ya\x00\xff"), fail(ErrMalformed)}},
		{name: "sub-filter limit", limit: 5, in: "*abc#*abcd#", want: []event{req("", "", "abc", "*abc#"), fail(ErrTooLarge)}},
		{name: "nothing yet", limit: 5, in: "", rest: ""},
	})
}

// countingFactory wraps fac, counting the filters it makes and recording their limits.
func countingFactory(fac Factory, calls *int, limits *[]int) Factory {
	return func(limit int) Filter {
		*calls++
		*limits = append(*limits, limit)
		return fac(limit)
	}
}

func TestSwitchCreatesSubFiltersLazily(t *testing.T) {
	var yCalls, starCalls int
	var limits []int
	fac := Switch(map[byte]Factory{
		'Y': countingFactory(BeginEndMark([]byte("Y"), []byte{0x00, 0xff}), &yCalls, &limits),
		'*': countingFactory(BeginEndMark([]byte("*"), []byte("#")), &starCalls, &limits),
	})
	f := fac(77)
	if yCalls+starCalls != 0 {
		t.Fatal("sub-filters made before any byte arrived")
	}
	got, _ := feed(t, f, []byte("Ya\x00\xffYb\x00\xffYc\x00\xff"), ones)
	if len(got) != 3 || yCalls != 1 || starCalls != 0 {
		t.Fatalf("%d requests, %d 'Y' filters, %d '*' filters; want 3, 1, 0", len(got), yCalls, starCalls)
	}
	feed(t, f, []byte("*a#Yb\x00\xff*c#"), whole)
	if yCalls != 1 || starCalls != 1 {
		t.Fatalf("%d 'Y' filters, %d '*' filters; want 1 and 1", yCalls, starCalls)
	}
	for _, l := range limits {
		if l != 77 {
			t.Fatalf("sub-filter limits %v, want 77", limits)
		}
	}
	// Another stream gets its own sub-filters.
	feed(t, fac(77), []byte("*a#"), whole)
	if starCalls != 2 {
		t.Fatalf("%d '*' filters after a second stream, want 2", starCalls)
	}
}

// handOver is a filter that, after its first request, hands its route to next.
type handOver struct {
	inner, next Filter
	done        bool
}

func (h *handOver) Filter(data []byte) (Request, int, error) {
	r, n, err := h.inner.Filter(data)
	h.done = h.done || n > 0
	return r, n, err
}

func (h *handOver) Next() Filter {
	if !h.done {
		return nil
	}
	return h.next
}

func TestSwitchHonoursSwitcher(t *testing.T) {
	// Route 'L': first a 2-byte frame, then 3-byte frames for the rest of the stream.
	fac := Switch(map[byte]Factory{
		'L': func(limit int) Filter {
			return &handOver{inner: FixedSize(2)(limit), next: FixedSize(3)(limit)}
		},
		'*': BeginEndMark([]byte("*"), []byte("#")),
	})
	runCases(t, fac, []filterCase{
		{name: "hand over", limit: 100, in: "La*#LbcLde*x#Lf",
			want: []event{req("", "", "La", "La"), req("", "", "", "*#"), req("", "", "Lbc", "Lbc"), req("", "", "Lde", "Lde"), req("", "", "x", "*x#")}, rest: "Lf"},
	})
}

func TestSwitchErrors(t *testing.T) {
	_, _, err := sample()(100).Filter([]byte("Q"))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown first byte: %v, want ErrMalformed", err)
	}
}

func TestSwitchCopiesRoutes(t *testing.T) {
	routes := map[byte]Factory{'*': BeginEndMark([]byte("*"), []byte("#"))}
	fac := Switch(routes)
	routes['Y'] = FixedSize(1)
	delete(routes, '*')
	checkEvents(t, fac(100), "*a#Y", req("", "", "a", "*a#"), fail(ErrMalformed))
}

func TestSwitchPanics(t *testing.T) {
	mustPanic(t, "no routes", func() { Switch(nil) })
	mustPanic(t, "nil Factory for first byte 0x41", func() { Switch(map[byte]Factory{'A': nil}) })
}

func FuzzSwitch(f *testing.F) {
	f.Add([]byte("Yabc\x00\xff*x#*#Y\x00\xff"), uint16(100), []byte{0, 2})
	f.Add([]byte("Y*#\x00\xffZ"), uint16(100), []byte{1})
	f.Add([]byte("L\x03abc#ADD#1#2#GET x\r\n"), uint16(10), []byte{})
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, chunks []byte) {
		fac := Switch(map[byte]Factory{
			'Y': BeginEndMark([]byte("Y"), []byte{0x00, 0xff}),
			'*': BeginEndMark([]byte("*"), []byte("#")),
			'L': LengthPrefixed(LengthField{Offset: 1, Size: 1}),
			'#': CountSplitter('#', 4),
			'G': CommandLine(),
			'F': FixedSize(3),
		})
		checkChunking(t, fac, int(limit)%256+1, fuzzInput(data), chunkSizes(chunks))
	})
}

func BenchmarkSwitch(b *testing.B) {
	buf := repeat(1000, "Yhello world\x00\xff", "*the quick brown fox#", "Y\x00\xff", "*#")
	benchFilter(b, sample(), 1024, buf)
}
