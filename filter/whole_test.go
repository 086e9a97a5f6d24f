package filter

import (
	"bytes"
	"errors"
	"testing"
)

func TestWhole(t *testing.T) {
	for _, tt := range []struct {
		header, limit int
		in            string
		want          event
	}{
		{0, 100, "hello world\r\n", req("", "", "hello world\r\n", "hello world\r\n")},
		{0, 5, "12345", req("", "", "12345", "12345")},
		{0, 4, "12345", fail(ErrTooLarge)},
		{4, 100, "ECHOdata", req("", "ECHO", "data", "ECHOdata")},
		{4, 100, "ECHO", req("", "ECHO", "", "ECHO")},
		{4, 100, "ECH", fail(ErrMalformed)},
	} {
		r, n, err := Whole(tt.header)(tt.limit).Filter([]byte(tt.in))
		got := event{Err: kind(err)}
		if err == nil {
			got = req(r.Key, string(r.Header), string(r.Body), string(r.Frame))
			if n != len(tt.in) {
				t.Errorf("%q: consumed %d of %d bytes", tt.in, n, len(tt.in))
			}
		}
		if !sameEvent(got, tt.want) {
			t.Errorf("Whole(%d), limit %d, %q: %v, want %v", tt.header, tt.limit, tt.in, got, tt.want)
		}
	}
	mustPanic(t, "negative", func() { Whole(-1) })
}

// FuzzWhole: a message is one request, all of it, split at the header, or an error that
// says why.
func FuzzWhole(f *testing.F) {
	f.Add([]byte("ECHOdata"), uint8(4), uint16(64))
	f.Add([]byte("x"), uint8(4), uint16(64))
	f.Fuzz(func(t *testing.T, data []byte, header uint8, limit uint16) {
		if len(data) == 0 {
			return // the server never hands a filter nothing
		}
		r, n, err := Whole(int(header))(int(limit)).Filter(data)
		switch {
		case len(data) > int(limit):
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("over the limit: %v", err)
			}
		case len(data) < int(header):
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("short: %v", err)
			}
		case err != nil || n != len(data) || !bytes.Equal(r.Frame, data) || !bytes.Equal(append(append([]byte(nil), r.Header...), r.Body...), data) || len(r.Header) != int(header):
			t.Fatalf("%q: %+v, %d, %v", data, r, n, err)
		}
	})
}

func BenchmarkWhole(b *testing.B) {
	f := Whole(4)(1400)
	msg := []byte("ECHO0f8fad5b-d9cb-469f-a165-70867728950e some data")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, n, err := f.Filter(msg); n != len(msg) || err != nil {
			b.Fatal(err)
		}
	}
}
