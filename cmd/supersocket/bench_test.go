package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
	"github.com/supersocket-go/supersocket/internal/cli"
)

// startApp serves the named app on 127.0.0.1:0 until the test ends and returns its address.
func startApp(t *testing.T, name string) string {
	t.Helper()
	app, err := apps.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := app(supersocket.Config{
		Name:      name,
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv.Addrs()[0].String()
}

// runBench runs the bench command in-process and returns its exit status, stdout and stderr.
func runBench(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := benchMain(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func decodeResult(t *testing.T, out string) benchJSON {
	t.Helper()
	var r benchJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, out)
	}
	return r
}

func TestBenchEchoesEveryProtocol(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	cases := []struct {
		app   string
		args  []string
		proto string
	}{
		{"lineecho", []string{"-proto", "line", "-size", "1"}, "line"},
		{"commandline", []string{"-proto", "line", "-line-prefix", "ECHO ", "-size", "100"}, "line"},
		{"lenecho", []string{"-proto", "len", "-size", "4096"}, "len"},
		{"echo", []string{"-proto", "echo", "-size", "64", "-progress"}, "echo"},
	}
	for _, tc := range cases {
		t.Run(tc.app, func(t *testing.T) {
			t.Parallel()
			addr := startApp(t, tc.app)
			args := append([]string{"-addr", addr, "-conns", "3", "-pipeline", "4", "-duration", "400ms",
				"-warmup", "50ms", "-timeout", "5s", "-server-pid", pid, "-label", "test", "-json"}, tc.args...)
			code, out, errs := runBench(t, args...)
			if code != cli.ExitOK {
				t.Fatalf("exit status %d; stdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			r := decodeResult(t, out)
			if r.Mode != "load" || r.Proto != tc.proto || r.Label != "test" || r.Conns != 3 || r.Pipeline != 4 {
				t.Errorf("result describes the wrong run: %+v", r)
			}
			if r.Msgs <= 0 || r.MsgsPerSec <= 0 || r.MBPerSec <= 0 {
				t.Errorf("no messages counted: %+v", r)
			}
			if r.Errors != 0 {
				t.Errorf("errors = %d (%s), want 0", r.Errors, r.ErrorSample)
			}
			if r.LatencyUS == nil || r.LatencyUS.P50 <= 0 || r.LatencyUS.P50 > r.LatencyUS.P99 || r.LatencyUS.P99 > r.LatencyUS.P999 || r.LatencyUS.P999 > r.LatencyUS.Max {
				t.Errorf("latencies out of order: %+v", r.LatencyUS)
			}
			if r.ServerReadsPerMsg == nil || *r.ServerReadsPerMsg <= 0 || r.ServerWritesPerMsg == nil || *r.ServerWritesPerMsg <= 0 {
				t.Errorf("server system calls not counted: %+v", r)
			}
			if r.ServerCPUNsPerMsg == nil || r.ServerCPUSec == nil {
				t.Errorf("server CPU not measured: %+v (%s)", r, r.ServerCPUError)
			}
			if slices.Contains(tc.args, "-progress") && !strings.Contains(errs, "\r\033[K") {
				t.Errorf("-progress printed no progress line to stderr: %q", errs)
			}
		})
	}
}

// corruptingProxy forwards connections to target, passing requests through untouched and
// handing each reply stream to mangle on its way back. It runs until the test ends.
func corruptingProxy(t *testing.T, target string, mangle func(src io.Reader, dst io.Writer) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(up)
			wg.Go(func() { io.Copy(up, c); up.Close() })
			wg.Go(func() { mangle(up, c); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
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

func TestBenchIdle(t *testing.T) {
	addr := startApp(t, "echo")
	code, out, errs := runBench(t, "-addr", addr, "-idle", "50", "-idle-settle", "0s", "-server-pid", strconv.Itoa(os.Getpid()), "-json")
	if code != cli.ExitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, errs)
	}
	r := decodeResult(t, out)
	if r.Mode != "idle" || r.Conns != 50 || r.OpenConns != 50 || r.Errors != 0 {
		t.Errorf("idle result %+v", r)
	}
	if r.RSSPerConn == nil || r.RSSBefore <= 0 || r.RSSAfter <= 0 {
		t.Errorf("server memory not measured: %+v", r)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-proto", "http"},
		{"-proto", "echo", "-size", "70000"},
		{"-proto", "len", "-line-prefix", "ECHO "},
		{"-conns", "0"},
		{"-pipeline", "0"},
		{"-size", "0"},
		{"-duration", "0s"},
		{"-server-pid", "-3"},
		{"extra"},
	} {
		code, _, errs := runBench(t, args...)
		if code != cli.ExitUsage || !strings.Contains(errs, "supersocket bench") {
			t.Errorf("%q: exit %d, stderr %q; want %d and a message", args, code, errs, cli.ExitUsage)
		}
	}
	if code, _, errs := runBench(t, "-h"); code != cli.ExitOK || !strings.Contains(errs, "-pipeline") {
		t.Errorf("-h: exit %d, usage %q", code, errs)
	}
}

func TestBenchReport(t *testing.T) {
	var in bytes.Buffer
	add := func(r benchJSON) {
		b, _ := json.Marshal(r)
		in.Write(append(b, '\n'))
	}
	for i, rate := range []float64{100, 300, 200} { // median 200
		for label, f := range map[string]float64{labelSelf: 1, labelNet: 0.8, labelGnet: 2} {
			add(benchJSON{Mode: "load", Label: label, Proto: protoEcho, Conns: 64, Pipeline: 16, Size: 64,
				MsgsPerSec: rate * f, ServerCPUNsPerMsg: ptr(1000 / f * float64(i+1)), ClientCPUUtil: 0.99,
				LatencyUS: &latencyJSON{P99: 100}})
		}
	}
	// A cell that misses the msgs/s target with a saturated load tool: the report adds
	// the CPU ratio there (ss 1 µs, net 0.8 µs per message).
	for _, rate := range []float64{100, 300, 200} {
		for label, f := range map[string]float64{labelSelf: 1, labelNet: 1.25, labelGnet: 1} {
			add(benchJSON{Mode: "load", Label: label, Proto: protoEcho, Conns: 1000, Pipeline: 16, Size: 64,
				MsgsPerSec: rate * f, ServerCPUNsPerMsg: ptr(1000 / f), ClientCPUUtil: 0.99,
				LatencyUS: &latencyJSON{P99: 100}})
		}
	}
	add(benchJSON{Mode: "idle", Label: labelSelf, Proto: protoEcho, Conns: 10000, OpenConns: 10000, RSSPerConn: ptr(4000), RSSBefore: 1, RSSAfter: 40000001})
	file := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(file, append([]byte("a log line\n"), in.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runBench(t, "-report", file)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		" 200 ", " 160 ", " 400 ", // median msgs/s of each server
		"1.25×",                             // ss ÷ net msgs/s
		"2.00×",                             // ss ÷ gnet CPU/msg: 2 µs ÷ 1 µs
		"runs 2.00–2.00×",                   // the per-run ratios of the miss, paired run by run
		"0 of the 1 misses have a run pair", // and none of them meets the target
		"0.99*",                             // a saturated load tool is marked
		"server CPU per message is the fair efficiency figure",
		"1 of 2 cells met", // each target: one cell met, one missed
		"c=1000 p=16 64 B (0.80×; runs 0.80–0.80×; load tool saturated: ss ÷ net CPU/msg 1.25×)",
		"4.00 KB", "met",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if code, _, _ := runBench(t, "-report", filepath.Join(t.TempDir(), "missing")); code != cli.ExitError {
		t.Errorf("missing file: exit %d", code)
	}
}

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

func TestHistogramBuckets(t *testing.T) {
	// Every value maps to a bucket whose range holds it, and buckets are contiguous.
	prevEnd := int64(0)
	for i := range histBuckets {
		lo, w := bucketRange(i)
		if lo != prevEnd {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevEnd)
		}
		if bucketOf(lo) != i || bucketOf(lo+w-1) != i {
			t.Fatalf("bucket %d [%d, %d) does not map back", i, lo, lo+w)
		}
		if lo >= 2*histSub && float64(w)/float64(lo) > 1.0/histSub {
			t.Fatalf("bucket %d: width %d is over 1/%d of %d", i, w, histSub, lo)
		}
		prevEnd = lo + w
	}
	if prevEnd != histMax+1 {
		t.Errorf("buckets end at %d, want %d", prevEnd, histMax+1)
	}
}

// within reports whether got is exact within the histogram's precision.
func within(got, exact int64) bool {
	return math.Abs(float64(got-exact)) <= math.Max(1, float64(exact)/histSub)
}

func TestHistogramPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform 0..1ms":     func() int64 { return rng.Int64N(1_000_000) },
		"exponential 50µs":   func() int64 { return int64(rng.ExpFloat64() * 50_000) },
		"lognormal ~100µs":   func() int64 { return int64(math.Exp(rng.NormFloat64()*1.2 + math.Log(100_000))) },
		"small exact 0..100": func() int64 { return rng.Int64N(101) },
	}
	for name, draw := range dists {
		h := newHistogram()
		samples := make([]int64, 200_000)
		for i := range samples {
			samples[i] = draw()
			h.record(samples[i])
		}
		slices.Sort(samples)
		for _, p := range []float64{0, 1, 50, 90, 99, 99.9, 99.99, 100} {
			rank := max(1, int(math.Ceil(p/100*float64(len(samples)))))
			exact := samples[rank-1]
			if got := h.percentile(p); !within(got, exact) {
				t.Errorf("%s p%v = %d, exact %d: outside the bucket precision", name, p, got, exact)
			}
		}
		if h.min != samples[0] || h.max != samples[len(samples)-1] || h.count() != uint64(len(samples)) {
			t.Errorf("%s: min %d max %d n %d", name, h.min, h.max, h.count())
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	h := newHistogram()
	if h.percentile(99) != 0 || h.mean() != 0 {
		t.Error("empty histogram is not zero")
	}
	h.record(-5)              // clamps to 0
	h.record(histMax + 12345) // clamps to the top
	if h.min != 0 || h.max != histMax || h.percentile(100) != histMax || h.percentile(0) != 0 {
		t.Errorf("clamping: min %d max %d", h.min, h.max)
	}

	// Merging gives the histogram of all the samples.
	a, b, all := newHistogram(), newHistogram(), newHistogram()
	for i := range int64(10_000) {
		v := i * i
		all.record(v)
		if i%3 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(b)
	a.merge(newHistogram())
	for _, p := range []float64{10, 50, 99, 99.9} {
		if a.percentile(p) != all.percentile(p) {
			t.Errorf("merged p%v = %d, want %d", p, a.percentile(p), all.percentile(p))
		}
	}
	if a.count() != all.count() || a.mean() != all.mean() || a.min != all.min || a.max != all.max {
		t.Error("merged summary differs")
	}
}

func TestProcParsing(t *testing.T) {
	stat := []byte("1234 (my (odd) server) S 1 1234 1234 0 -1 4194560 2811 0 0 0 250 75 0 0 20 0 9 0 1234 0 0\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3250*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.25s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Error("parseStatCPU accepted garbage")
	}
	rss, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t  999 kB\nVmRSS:\t    2048 kB\nThreads: 3\n"))
	if err != nil || rss != 2048<<10 {
		t.Errorf("parseVmRSS = %d, %v", rss, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("parseVmRSS without VmRSS")
	}
	pio, err := parseProcIO([]byte("rchar: 1\nwchar: 2\nsyscr: 30\nsyscw: 40\nread_bytes: 0\n"))
	if err != nil || pio != (procIO{reads: 30, writes: 40}) {
		t.Errorf("parseProcIO = %+v, %v", pio, err)
	}
	if _, err := parseProcIO([]byte("rchar: 1\n")); err == nil {
		t.Error("parseProcIO without syscr")
	}
	// This process's own figures are readable.
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
	if n, err := procRSS(os.Getpid()); err != nil || n <= 0 {
		t.Errorf("procRSS = %d, %v", n, err)
	}
}

func TestSourceAddrs(t *testing.T) {
	ips, err := sourceAddrs("auto", "127.0.0.1:9000", 50000)
	if err != nil || len(ips) != 3 || !ips[2].Equal(net.IPv4(127, 0, 0, 3)) {
		t.Errorf("auto for 50000 = %v, %v", ips, err)
	}
	for _, tc := range []struct {
		target string
		n      int
	}{{"127.0.0.1:9000", 1000}, {"[::1]:9000", 50000}} {
		if ips, err := sourceAddrs("auto", tc.target, tc.n); err != nil || ips != nil {
			t.Errorf("auto %v = %v, %v; want none", tc, ips, err)
		}
	}
	if ips, err := sourceAddrs("127.0.0.2, 127.0.0.3", "127.0.0.1:1", 1); err != nil || len(ips) != 2 {
		t.Errorf("list = %v, %v", ips, err)
	}
	if _, err := sourceAddrs("nope", "127.0.0.1:1", 1); err == nil {
		t.Error("bad address accepted")
	}
}
