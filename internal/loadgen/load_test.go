package loadgen

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/internal/wstest"
)

// corruptingProxy forwards connections to target, passing requests through untouched and
// handing each reply stream to mangle on its way back. It runs until the test ends.
func corruptingProxy(t *testing.T, target string, mangle func(src io.Reader, dst io.Writer) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return wstest.ServeListener(t, ln, func(c net.Conn) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		// The test's end closes c, which ends the copy, which closes up, which ends mangle.
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(up, c); up.Close() })
		mangle(up, c)
		c.Close()
		wg.Wait()
	})
}

// flipByte copies the stream, inverting one bit of byte at.
func flipByte(at int64) func(io.Reader, io.Writer) error {
	return func(src io.Reader, dst io.Writer) error {
		if _, err := io.CopyN(dst, src, at); err != nil {
			return err
		}
		var b [1]byte
		if _, err := io.ReadFull(src, b[:]); err != nil {
			return err
		}
		b[0] ^= 0x20
		if _, err := dst.Write(b[:]); err != nil {
			return err
		}
		_, err := io.Copy(dst, src)
		return err
	}
}

// swapFrames copies a stream of frameLen-byte frames, swapping frames 2 and 3.
func swapFrames(frameLen int) func(io.Reader, io.Writer) error {
	return func(src io.Reader, dst io.Writer) error {
		if _, err := io.CopyN(dst, src, int64(2*frameLen)); err != nil {
			return err
		}
		pair := make([]byte, 2*frameLen)
		if _, err := io.ReadFull(src, pair); err != nil {
			return err
		}
		if _, err := dst.Write(append(slices.Clone(pair[frameLen:]), pair[:frameLen]...)); err != nil {
			return err
		}
		_, err := io.Copy(dst, src)
		return err
	}
}

func TestBenchDetectsCorruption(t *testing.T) {
	cases := []struct {
		name, app, proto string
		mangle           func(io.Reader, io.Writer) error
	}{
		{"flip line", "lineecho", "line", flipByte(100)},
		{"flip len", "lenecho", "len", flipByte(150)},
		{"flip echo body", "echo", "echo", flipByte(3*69 + 20)},
		{"flip echo packet id", "echo", "echo", flipByte(69 + 2)},
		{"reorder len", "lenecho", "len", swapFrames(4 + 64)},
		{"reorder echo", "echo", "echo", swapFrames(5 + 64)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := corruptingProxy(t, startApp(t, tc.app), tc.mangle)
			code, out, errs := runBench(t, "-addr", addr, "-proto", tc.proto, "-size", "64",
				"-conns", "2", "-pipeline", "4", "-duration", "300ms", "-timeout", "3s", "-json")
			if code != cli.ExitError {
				t.Errorf("exit status %d, want %d (errors found); stderr:\n%s", code, cli.ExitError, errs)
			}
			r := decodeResult(t, out)
			if r.Errors == 0 || r.ErrorKinds[errMismatch] == 0 {
				t.Fatalf("corruption not detected: %+v", r)
			}
			if !strings.Contains(r.ErrorSample, "reply") {
				t.Errorf("error sample does not say which reply: %q", r.ErrorSample)
			}
		})
	}
}

func TestBenchDetectsLostReplies(t *testing.T) {
	// A server that reads and never answers: every request in flight is missing when the
	// deadline passes.
	addr := corruptingProxy(t, startApp(t, "echo"), func(src io.Reader, _ io.Writer) error {
		_, err := io.Copy(io.Discard, src)
		return err
	})
	code, out, _ := runBench(t, "-addr", addr, "-conns", "2", "-pipeline", "2", "-duration", "100ms", "-timeout", "300ms", "-json")
	r := decodeResult(t, out)
	if code != cli.ExitError || r.ErrorKinds[errTimeout] != 2 || r.Msgs != 0 {
		t.Errorf("exit %d, result %+v; want 2 timeouts and no messages", code, r)
	}
}

func TestBenchTableAndPlot(t *testing.T) {
	addr := startApp(t, "echo")
	plot := filepath.Join(t.TempDir(), "lat.svg")
	code, out, errs := runBench(t, "-addr", addr, "-conns", "2", "-duration", "200ms", "-plot", plot, "-label", "ss")
	if code != cli.ExitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, errs)
	}
	for _, want := range []string{"msgs/s", "MB/s", "latency p50", "latency p99", "latency p99.9", "errors", "server CPU/msg", "ss at " + addr} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b)
}

func checkSVG(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	elems := map[string]int{}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("plot is not well-formed XML: %v\n%s", err, b)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elems[se.Name.Local]++
		}
	}
	if elems["svg"] != 1 || elems["polyline"] != 1 || elems["text"] < 5 {
		t.Errorf("plot lacks its parts: %v", elems)
	}
}
