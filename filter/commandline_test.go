package filter

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"
)

func TestCommandLine(t *testing.T) {
	runCases(t, CommandLine(), []filterCase{
		{name: "key and body", limit: 100, in: "GET name\r\n", want: []event{req("GET", "", "name", "GET name\r\n")}},
		{name: "bare lf", limit: 100, in: "GET name\n", want: []event{req("GET", "", "name", "GET name\n")}},
		{name: "body verbatim", limit: 100, in: "ADD 1  2 \r\n", want: []event{req("ADD", "", "1  2 ", "ADD 1  2 \r\n")}},
		{name: "key only", limit: 100, in: "QUIT\r\n", want: []event{req("QUIT", "", "", "QUIT\r\n")}},
		{name: "trailing space", limit: 100, in: "QUIT \r\n", want: []event{req("QUIT", "", "", "QUIT \r\n")}},
		{name: "empty line", limit: 100, in: "\r\n\n", want: []event{req("", "", "", "\r\n"), req("", "", "", "\n")}},
		{name: "leading space", limit: 100, in: " x y\n", want: []event{req("", "", "x y", " x y\n")}},
		{name: "inner cr kept", limit: 100, in: "a\rb c\n", want: []event{req("a\rb", "", "c", "a\rb c\n")}},
		{name: "one cr dropped", limit: 100, in: "x\r\r\n", want: []event{req("x\r", "", "", "x\r\r\n")}},
		{name: "case kept", limit: 100, in: "get a\nGET b\n", want: []event{req("get", "", "a", "get a\n"), req("GET", "", "b", "GET b\n")}},
		{name: "many and rest", limit: 100, in: "A 1\nB 2\r\nC", want: []event{req("A", "", "1", "A 1\n"), req("B", "", "2", "B 2\r\n")}, rest: "C"},
		{name: "limit-1", limit: 7, in: "AB C\r\n", want: []event{req("AB", "", "C", "AB C\r\n")}},
		{name: "limit", limit: 7, in: "AB CD\r\n", want: []event{req("AB", "", "CD", "AB CD\r\n")}},
		{name: "limit+1", limit: 7, in: "AB CDE\r\n", want: []event{fail(ErrTooLarge)}},
		{name: "limit 1", limit: 1, in: "\n\nx", want: []event{req("", "", "", "\n"), req("", "", "", "\n"), fail(ErrTooLarge)}},
	})
}

func TestCommandLineParams(t *testing.T) {
	r, _, err := CommandLine()(100).Filter([]byte("ADD  1 2  3 \r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.sep != 0 || r.keepEmpty {
		t.Fatalf("sep %q keepEmpty %v, want space splitting dropping empties", r.sep, r.keepEmpty)
	}
	if got, want := r.Params(), []string{"1", "2", "3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Params() = %q, want %q", got, want)
	}
	// AppendParams gives the same fields as sub-slices of Body, into the caller's slice.
	dst := make([][]byte, 0, 4)
	fields := r.AppendParams(dst)
	if len(fields) != 3 || string(fields[0]) != "1" || string(fields[2]) != "3" || &fields[0][0] != &r.Body[1] {
		t.Fatalf("AppendParams = %q, want 1 2 3 aliasing Body %q", fields, r.Body)
	}
	r, _, _ = CommandLine()(100).Filter([]byte("QUIT\n"))
	if p := r.Params(); p != nil {
		t.Fatalf("Params() of a bare key = %q, want nil", p)
	}
	if f := r.AppendParams(dst); len(f) != 0 {
		t.Fatalf("AppendParams of a bare key = %q, want none", f)
	}
}

func TestCommandLineInternsKeys(t *testing.T) {
	f := CommandLine()(100).(*commandLineFilter)
	a, _, _ := f.Filter([]byte("SET a\n"))
	b, _, _ := f.Filter([]byte("SET b\n"))
	if unsafe.StringData(a.Key) != unsafe.StringData(b.Key) {
		t.Fatal("the same key was allocated twice")
	}
	buf := repeat(10, "GET x\r\n", "SET y z\r\n", "QUIT\r\n")
	if n := testing.AllocsPerRun(100, func() { drain(f, buf) }); n != 0 {
		t.Fatalf("%v allocations per run over known keys, want 0", n)
	}
	// The cache is bounded: a peer sending endless distinct keys cannot grow it.
	for i := range 3 * maxInternedKeys {
		r, _, _ := f.Filter(fmt.Appendf(nil, "K%d\n", i))
		if r.Key != fmt.Sprintf("K%d", i) {
			t.Fatalf("key %q", r.Key)
		}
	}
	long := make([]byte, maxInternedKeyLen+1)
	for i := range long {
		long[i] = 'L'
	}
	f = CommandLine()(1000).(*commandLineFilter)
	f.Filter(append(long, '\n'))
	if len(f.keys.m) != 0 {
		t.Fatalf("a %d-byte key was cached", len(long))
	}
	for i := range 3 * maxInternedKeys {
		f.Filter(fmt.Appendf(nil, "K%d\n", i))
	}
	if len(f.keys.m) != maxInternedKeys {
		t.Fatalf("cache holds %d keys, want the cap %d", len(f.keys.m), maxInternedKeys)
	}
}

func FuzzCommandLine(f *testing.F) {
	f.Add([]byte("GET name\r\nADD 1 2\nQUIT\r\n"), uint16(100), []byte{0, 3})
	f.Add([]byte("\r\n\n \r\n x y\r"), uint16(3), []byte{1})
	f.Add([]byte("very long line without an end"), uint16(8), []byte{})
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, chunks []byte) {
		checkChunking(t, CommandLine(), int(limit)%600+1, fuzzInput(data), chunkSizes(chunks))
	})
}

func BenchmarkCommandLine(b *testing.B) {
	buf := repeat(1000, "GET user:1000\r\n", "SET user:1000 some value\r\n", "QUIT\r\n")
	benchFilter(b, CommandLine(), 1024, buf)
}
