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
	var in resultLines
	add := in.add
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
	var in resultLines
	add := in.add
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
		"gorilla           echo   ws",
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

// The epoll engine is a second supersocket server in the matrix: its own ratio columns
// and targets (CPU/msg against gnet in every cell and at the median, msgs/s against net
// where the load tool is not saturated, p99 against the goroutine engine at 1000
// connections and pipeline 1), and its idle target at 19 000 connections.
func TestBenchReportEpoll(t *testing.T) {
	var in resultLines
	add := in.add
	for range 3 {
		// 1000 connections, pipeline 1: ep's CPU 0.9× gnet's, its p99 0.5× ss's.
		for label, v := range map[string][3]float64{ // msgs/s, CPU ns, p99 µs
			labelSelf: {1000, 1000, 200}, labelEpoll: {1000, 900, 100}, labelNet: {900, 1100, 300}, labelGnet: {1000, 1000, 100},
		} {
			add(resultJSON{Mode: "load", Label: label, Proto: protoEcho, Conns: 1000, Pipeline: 1, Size: 64,
				MsgsPerSec: v[0], ServerCPUNsPerMsg: ptr(v[1]), ClientCPUUtil: 0.5, LatencyUS: &latencyJSON{P99: v[2]}})
		}
		// 64 connections, pipeline 16, load tool saturated: ep's msgs/s below net's does
		// not count; its CPU 1.2× gnet's misses.
		for label, v := range map[string][2]float64{labelSelf: {1000, 1000}, labelEpoll: {800, 1200}, labelNet: {1000, 1000}, labelGnet: {1000, 1000}} {
			add(resultJSON{Mode: "load", Label: label, Proto: protoEcho, Conns: 64, Pipeline: 16, Size: 64,
				MsgsPerSec: v[0], ServerCPUNsPerMsg: ptr(v[1]), ClientCPUUtil: 0.95, LatencyUS: &latencyJSON{P99: 100}})
		}
	}
	add(resultJSON{Mode: "idle", Label: labelEpoll, Proto: protoEcho, Conns: 19000, OpenConns: 19000, RSSPerConn: ptr(650)})
	add(resultJSON{Mode: "idle", Label: labelEpoll, Proto: protoEcho, Conns: 10000, OpenConns: 10000, RSSPerConn: ptr(700)})
	var out bytes.Buffer
	recs, err := readResultsFrom(&in)
	if err != nil {
		t.Fatal(err)
	}
	writeReport(&out, recs)
	for _, want := range []string{
		"ep msg/s", "ep÷net", "ep÷gnet",
		"target supersocket-epoll ÷ net msgs/s >= 1.00 in every cell where the load tool is not saturated: 1 of 1 cells met",
		"target supersocket-epoll ÷ gnet server CPU/msg <= 1.10: 1 of 2 cells met",
		"missed: echo c=64 p=16 64 B (1.20×",
		"target supersocket-epoll ÷ gnet server CPU/msg <= 1.00 at the median of the matrix: 1.05×, MISSED",
		"target supersocket-epoll ÷ supersocket p99 latency <= 1.00 at 1000 connections, pipeline 1: 1 of 1 cells met (median ratio 0.50×)",
		"target supersocket-epoll idle RSS <= 1.0 KB/conn at 19000 connections (echo): 0.65 KB, met",
		"target supersocket ÷ net msgs/s >= 1.00 in every cell: 2 of 2 cells met",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// resultLines is the input of a report: "bench -json" results, one per line.
type resultLines struct{ bytes.Buffer }

// add appends r as a line.
func (l *resultLines) add(r resultJSON) {
	b, _ := json.Marshal(r)
	l.Write(append(b, '\n'))
}
