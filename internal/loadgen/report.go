package loadgen

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/supersocket-go/supersocket/internal/cli"
)

// The labels whose ratios the report prints: the framework, and the two servers a Go
// user would write instead.
const (
	labelSelf = "supersocket"
	// labelEpoll is supersocket on its epoll engine (serve -engine epoll).
	labelEpoll = "supersocket-epoll"
	labelNet   = "net"
	labelGnet  = "gnet"
	// labelGorilla is the WebSocket baseline: bench/wsecho, gorilla/websocket on net/http.
	labelGorilla = "gorilla"
)

// Targets the report checks.
const (
	targetVsNet     = 1.0  // supersocket msgs/s ÷ net msgs/s, at least, in every cell
	targetCPUVsGnet = 1.1  // supersocket server CPU/msg ÷ gnet's, at most
	targetIdleBytes = 4500 // supersocket idle RSS per connection at 10 000 connections, at most
	targetIdleConns = 10000
	// The epoll engine's: server CPU/msg ÷ gnet's at most targetCPUVsGnet in every cell
	// and targetEpollCPUMedian at the median; msgs/s ÷ net's at least targetVsNet where
	// the load tool is not saturated; p99 ÷ the goroutine engine's at most targetEpollP99
	// at targetP99Conns connections, pipeline 1; idle RSS at most targetEpollIdleBytes
	// per connection at targetEpollIdleConns connections; new connections per second ÷
	// gnet's at least targetAcceptVsGnet.
	targetEpollCPUMedian = 1.0
	targetEpollP99       = 1.0
	targetP99Conns       = 1000
	targetEpollIdleBytes = 1000
	targetEpollIdleConns = 19000
	targetAcceptVsGnet   = 1.0
	// Over WebSocket: supersocket ÷ gorilla msgs/s, at least, in every cell; server
	// CPU/msg ÷ gorilla's, at most; idle RSS per connection ÷ supersocket's own over raw
	// TCP, at most.
	targetWSVsGorilla    = 1.0
	targetWSCPUVsGorilla = 0.8
	targetWSIdleVsTCP    = 1.2
	saturatedLoadCPU     = 0.9 // a load tool using this much of its core is the bottleneck
)

// reportMain reads -json results from files ("-" is stdin) and prints medians and ratios.
func reportMain(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		return usageError(stderr, fmt.Errorf("-report: name at least one file of -json results (- for stdin)"))
	}
	var recs []resultJSON
	for _, name := range files {
		rs, err := readResults(name)
		if err != nil {
			fmt.Fprintf(stderr, "supersocket bench -report: %v\n", err)
			return cli.ExitError
		}
		recs = append(recs, rs...)
	}
	if len(recs) == 0 {
		fmt.Fprintln(stderr, "supersocket bench -report: no results")
		return cli.ExitError
	}
	writeReport(stdout, recs)
	return cli.ExitOK
}

// readResults reads the -json results in file name ("-" is stdin), one a line; lines that
// are not JSON objects (logs, blank lines) are skipped.
func readResults(name string) ([]resultJSON, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	recs, err := readResultsFrom(r)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", name, err)
	}
	return recs, nil
}

// readResultsFrom reads -json results from r as readResults does; an error names the
// line.
func readResultsFrom(r io.Reader) ([]resultJSON, error) {
	var recs []resultJSON
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(text, "{") {
			continue // tolerate logs and blank lines between results
		}
		var rec resultJSON
		if err := json.Unmarshal([]byte(text), &rec); err != nil {
			return nil, fmt.Errorf("%d: %w", line, err)
		}
		recs = append(recs, rec)
	}
	return recs, sc.Err()
}

// median returns the median of xs (the mean of the middle two for an even count), NaN
// for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// labelOrder puts the known labels first, then the rest sorted.
func labelOrder(labels map[string]bool) []string {
	var out []string
	known := []string{labelSelf, labelEpoll, labelNet, labelGnet, labelGorilla}
	for _, l := range known {
		if labels[l] {
			out = append(out, l)
		}
	}
	var rest []string
	for l := range labels {
		if !slices.Contains(known, l) {
			rest = append(rest, l)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// writeReport prints the load matrix and the idle table of recs, each where recs hold
// runs of its mode.
func writeReport(w io.Writer, recs []resultJSON) {
	cells := map[cellKey]map[string][]resultJSON{}
	idle := map[idleKey]map[int][]resultJSON{}
	accepts := map[string]map[int][]resultJSON{} // label → clients → runs
	labels := map[string]bool{}
	for _, r := range recs {
		label := cmp.Or(r.Label, r.Addr)
		labels[label] = true
		switch r.Mode {
		case "load":
			k := cellKey{r.Proto, r.LinePrefix, r.Conns, r.Pipeline, r.Size, cmp.Or(r.Transport, transportTCP)}
			if cells[k] == nil {
				cells[k] = map[string][]resultJSON{}
			}
			cells[k][label] = append(cells[k][label], r)
		case "idle":
			k := idleKey{label, r.Proto, cmp.Or(r.Transport, transportTCP)}
			if idle[k] == nil {
				idle[k] = map[int][]resultJSON{}
			}
			idle[k][r.Conns] = append(idle[k][r.Conns], r)
		case "accept":
			if accepts[label] == nil {
				accepts[label] = map[int][]resultJSON{}
			}
			accepts[label][r.Conns] = append(accepts[label][r.Conns], r)
		}
	}
	order := labelOrder(labels)
	if len(cells) > 0 {
		writeLoadReport(w, cells, order)
	}
	if len(idle) > 0 {
		writeIdleReport(w, idle, order)
	}
	if len(accepts) > 0 {
		writeAcceptReport(w, accepts, order)
	}
}
