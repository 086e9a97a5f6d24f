package loadgen

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/supersocket-go/supersocket/internal/cli"
)

func TestBenchReport(t *testing.T) {
	var in bytes.Buffer
	add := func(r resultJSON) {
		b, _ := json.Marshal(r)
		in.Write(append(b, '\n'))
	}
	for i, rate := range []float64{100, 300, 200} { // median 200
		for label, f := range map[string]float64{labelSelf: 1, labelNet: 0.8, labelGnet: 2} {
			add(resultJSON{Mode: "load", Label: label, Proto: protoEcho, Conns: 64, Pipeline: 16, Size: 64,
				MsgsPerSec: rate * f, ServerCPUNsPerMsg: ptr(1000 / f * float64(i+1)), ClientCPUUtil: 0.99,
				LatencyUS: &latencyJSON{P99: 100}})
		}
	}
	// A cell that misses the msgs/s target with a saturated load tool: the report adds
	// the CPU ratio there (ss 1 µs, net 0.8 µs per message).
	for _, rate := range []float64{100, 300, 200} {
		for label, f := range map[string]float64{labelSelf: 1, labelNet: 1.25, labelGnet: 1} {
			add(resultJSON{Mode: "load", Label: label, Proto: protoEcho, Conns: 1000, Pipeline: 16, Size: 64,
				MsgsPerSec: rate * f, ServerCPUNsPerMsg: ptr(1000 / f), ClientCPUUtil: 0.99,
				LatencyUS: &latencyJSON{P99: 100}})
		}
	}
	add(resultJSON{Mode: "idle", Label: labelSelf, Proto: protoEcho, Conns: 10000, OpenConns: 10000, RSSPerConn: ptr(4000), RSSBefore: 1, RSSAfter: 40000001})
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

// WebSocket cells are their own row groups, held against gorilla: msgs/s at least 1.0×,
// server CPU/msg at most 0.8×; and WebSocket idle memory against supersocket's own over
// TCP, at most 1.2×.
func TestBenchReportWebSocket(t *testing.T) {
	var in bytes.Buffer
	add := func(r resultJSON) {
		b, _ := json.Marshal(r)
		in.Write(append(b, '\n'))
	}
	for range 3 {
		for label, f := range map[string]float64{labelSelf: 1, labelGorilla: 0.5} {
			add(resultJSON{Mode: "load", Label: label, Proto: protoEcho, Transport: transportWS, Conns: 64, Pipeline: 1, Size: 64,
				MsgsPerSec: 1000 * f, ServerCPUNsPerMsg: ptr(900 / f), LatencyUS: &latencyJSON{P99: 100}})
		}
		// A TCP cell beside it, against net.
		for label, f := range map[string]float64{labelSelf: 1, labelNet: 0.5} {
			add(resultJSON{Mode: "load", Label: label, Proto: protoEcho, Conns: 64, Pipeline: 1, Size: 64,
				MsgsPerSec: 1000 * f, ServerCPUNsPerMsg: ptr(900 / f), LatencyUS: &latencyJSON{P99: 100}})
		}
	}
	add(resultJSON{Mode: "idle", Label: labelSelf, Proto: protoEcho, Conns: 10000, OpenConns: 10000, RSSPerConn: ptr(4000)})
	add(resultJSON{Mode: "idle", Label: labelSelf, Proto: protoEcho, Transport: transportWS, Conns: 10000, OpenConns: 10000, RSSPerConn: ptr(5200)})
	add(resultJSON{Mode: "idle", Label: labelGorilla, Proto: protoEcho, Transport: transportWS, Conns: 10000, OpenConns: 10000, RSSPerConn: ptr(12000)})
	var out bytes.Buffer
	recs, err := readResultsFrom(&in)
	if err != nil {
		t.Fatal(err)
	}
	writeReport(&out, recs)
	for _, want := range []string{
		"== echo over WebSocket", "gorilla msg/s", "ss÷gorilla", "2.00×", "0.50×",
		"target supersocket ÷ gorilla msgs/s >= 1.00 in every WebSocket cell: 1 of 1 cells met",
		"target supersocket ÷ gorilla server CPU/msg <= 0.80 (WebSocket): 1 of 1 cells met",
		"target supersocket ÷ net msgs/s >= 1.00 in every cell: 1 of 1 cells met",
		"5.20 KB ÷ 4.00 KB = 1.30×, MISSED",
		"gorilla      echo   ws",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	// The TCP rows have no gorilla column, and the WebSocket rows no net column.
	tcp, ws, _ := strings.Cut(out.String(), "== echo over WebSocket")
	if strings.Contains(tcp[strings.Index(tcp, "== echo"):], "gorilla msg/s") || strings.Contains(ws, "net msg/s") {
		t.Errorf("columns of another transport:\n%s", out.String())
	}
}
