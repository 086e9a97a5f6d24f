package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// cellKey identifies a cell of the load matrix.
type cellKey struct {
	proto, prefix         string
	conns, pipeline, size int
	transport             string // transportTCP or transportWS ("" reads as tcp)
}

// section names the cell's row group: the protocol, its line prefix, and WebSocket.
func (k cellKey) section() string {
	p := k.proto
	if k.prefix != "" {
		p += fmt.Sprintf(" (prefix %q)", k.prefix)
	}
	if k.transport == transportWS {
		p += " over WebSocket"
	}
	return p
}

// name names the cell in verdicts.
func (k cellKey) name() string {
	return fmt.Sprintf("%s c=%d p=%d %s", k.section(), k.conns, k.pipeline, fmtSize(k.size))
}

// comparison is what a transport's cells are held against: supersocket's msgs/s ÷
// rateRef's, at least rateMin, and its server CPU per message ÷ cpuRef's, at most cpuMax.
type comparison struct {
	rateRef string
	rateMin float64
	cpuRef  string
	cpuMax  float64
	cells   string // how the verdicts name the cells: "every cell", "every WebSocket cell"
}

var comparisons = map[string]comparison{
	transportTCP: {labelNet, targetVsNet, labelGnet, targetCPUVsGnet, "every cell"},
	transportWS:  {labelGorilla, targetWSVsGorilla, labelGorilla, targetWSCPUVsGorilla, "every WebSocket cell"},
}

type cellStats struct {
	runs       int
	errors     int64
	msgsPerSec float64
	cpuPerMsg  float64 // ns; NaN when not measured
	p99        float64 // µs
	syscalls   float64 // the server's read + write system calls per message; NaN when not measured
	clientUtil float64
	serverUtil float64
}

func summarize(rs []resultJSON) cellStats {
	var rate, cpu, p99, cu, su, sys []float64
	st := cellStats{runs: len(rs)}
	for _, r := range rs {
		st.errors += r.Errors
		rate = append(rate, r.MsgsPerSec)
		if r.ServerCPUNsPerMsg != nil {
			cpu = append(cpu, *r.ServerCPUNsPerMsg)
		}
		if r.ServerCPUUtil != nil {
			su = append(su, *r.ServerCPUUtil)
		}
		if r.LatencyUS != nil {
			p99 = append(p99, r.LatencyUS.P99)
		}
		cu = append(cu, r.ClientCPUUtil)
		if r.ServerReadsPerMsg != nil && r.ServerWritesPerMsg != nil {
			sys = append(sys, *r.ServerReadsPerMsg+*r.ServerWritesPerMsg)
		}
	}
	st.syscalls = median(sys)
	st.msgsPerSec, st.cpuPerMsg, st.p99 = median(rate), median(cpu), median(p99)
	st.clientUtil, st.serverUtil = median(cu), median(su)
	return st
}

// runRatios pairs the runs of two servers in a cell in the order they ran (run.sh
// interleaves the servers run by run, so pair i ran under the same conditions) and
// returns a's value ÷ b's for each pair where both have one.
func runRatios(a, b []resultJSON, value func(resultJSON) (float64, bool)) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		va, okA := value(a[i])
		vb, okB := value(b[i])
		if okA && okB && vb > 0 {
			out = append(out, va/vb)
		}
	}
	return out
}

// fmtSpread shows the range of per-run ratios, or nothing with fewer than two.
func fmtSpread(runs []float64) string {
	if len(runs) < 2 {
		return ""
	}
	return fmt.Sprintf("; runs %.2f–%.2f×", slices.Min(runs), slices.Max(runs))
}

func fmtRate(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtRatio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func fmtNs(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmtDur(v)
}

func fmtSize(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// writeLoadReport prints the load matrix, a row group per protocol and transport, and
// how many cells met each target.
func writeLoadReport(w io.Writer, cells map[cellKey]map[string][]resultJSON, order []string) {
	keys := make([]cellKey, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	protoRank := func(p string) int { return cmp.Or(slices.Index(protos, p)+1, len(protos)+1) }
	slices.SortFunc(keys, func(a, b cellKey) int {
		return cmp.Or(cmp.Compare(a.transport, b.transport), cmp.Compare(protoRank(a.proto), protoRank(b.proto)),
			cmp.Compare(a.prefix, b.prefix), cmp.Compare(a.conns, b.conns), cmp.Compare(a.size, b.size),
			cmp.Compare(a.pipeline, b.pipeline))
	})

	fmt.Fprintln(w, "Load matrix: medians over the runs of each cell.")
	fmt.Fprintln(w, "  msgs/s     replies checked per second (every byte, in order)")
	fmt.Fprintln(w, "  CPU/msg    the server's utime+stime over the run ÷ messages (/proc/PID/stat, 10 ms ticks)")
	fmt.Fprintln(w, "  p99        latency from request write to reply read, at the load tool")
	fmt.Fprintln(w, "  sys/msg    the server's read + write system calls per message (/proc/PID/io syscr + syscw)")
	fmt.Fprintln(w, "  load CPU   the load tool's CPU use, in cores (it has one); * marks a saturated load tool")
	fmt.Fprintln(w, "On a 2-core machine (server on one core, load tool on the other) the load tool saturates its")
	fmt.Fprintln(w, "core at >= 64 connections: there msgs/s measures the load tool as much as the server, and")
	fmt.Fprintln(w, "server CPU per message is the fair efficiency figure.")
	fmt.Fprintln(w)

	saturated := false
	tallies := map[string]map[string]*targetTallies{} // transport → self label → tallies
	for _, transport := range []string{transportTCP, transportWS} {
		var tkeys []cellKey
		for _, k := range keys {
			if k.transport == transport {
				tkeys = append(tkeys, k)
			}
		}
		if len(tkeys) > 0 {
			t := writeLoadRows(w, cells, tkeys, sectionOrder(cells, tkeys, order), comparisons[transport])
			tallies[transport] = t
			for _, st := range t {
				saturated = saturated || st.saturated
			}
		}
	}
	fmt.Fprintln(w)
	if saturated {
		fmt.Fprintln(w, "* the load tool used >= 0.9 of its core: msgs/s there is bounded by the load tool; compare CPU/msg.")
	}
	for _, transport := range []string{transportTCP, transportWS} {
		c := comparisons[transport]
		for _, self := range selves {
			t := tallies[transport][self]
			if t == nil {
				continue
			}
			cellsRate := c.cells
			if self == labelEpoll {
				cellsRate += " where the load tool is not saturated"
			}
			writeTarget(w, fmt.Sprintf("%s ÷ %s msgs/s >= %.2f in %s", self, c.rateRef, c.rateMin, cellsRate),
				t.rate.ratios, t.rate.misses, t.rate.noise, "at or above", c.rateMin)
			writeTarget(w, fmt.Sprintf("%s ÷ %s server CPU/msg <= %.2f%s", self, c.cpuRef, c.cpuMax,
				map[string]string{transportWS: " (WebSocket)"}[transport]),
				t.cpu.ratios, t.cpu.misses, t.cpu.noise, "at or below", c.cpuMax)
			if self == labelEpoll && transport == transportTCP && len(t.cpu.ratios) > 0 {
				m := median(t.cpu.ratios)
				fmt.Fprintf(w, "target %s ÷ %s server CPU/msg <= %.2f at the median of the matrix: %.2f×, %s\n",
					self, c.cpuRef, targetEpollCPUMedian, m, verdict(m > targetEpollCPUMedian))
			}
			if len(t.p99.ratios) > 0 {
				writeTarget(w, fmt.Sprintf("%s ÷ %s p99 latency <= %.2f at %d connections, pipeline 1", self, labelSelf, targetEpollP99, targetP99Conns),
					t.p99.ratios, t.p99.misses, t.p99.noise, "at or below", targetEpollP99)
			}
		}
	}
	fmt.Fprintln(w)
	writeBaselineReport(w, cells, keys)
}

// selves are the supersocket servers the report holds against the targets: the
// goroutine engine and the epoll engine.
var selves = []string{labelSelf, labelEpoll}

// verdict names a target's outcome.
func verdict(missed bool) string {
	if missed {
		return "MISSED"
	}
	return "met"
}

// targetTally is one target's cell ratios and misses; noise counts the misses with a run
// pair that meets the target (within the run-to-run spread rather than a consistent gap).
type targetTally struct {
	ratios []float64
	misses []string
	noise  int
}

// targetTallies are a row group's tallies of one server's targets (p99: the epoll
// engine's against the goroutine engine's).
type targetTallies struct {
	rate, cpu, p99 targetTally
	saturated      bool // a cell's load tool was saturated
}

// sectionOrder is order restricted to the labels with runs in the cells of keys.
func sectionOrder(cells map[cellKey]map[string][]resultJSON, keys []cellKey, order []string) []string {
	var out []string
	for _, l := range order {
		for _, k := range keys {
			if len(cells[k][l]) > 0 {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// writeLoadRows prints the rows of keys' cells, a header per protocol, with the ratios
// of comparison c for each supersocket server present, and returns the tallies of their
// targets, by label.
func writeLoadRows(w io.Writer, cells map[cellKey]map[string][]resultJSON, keys []cellKey, order []string, c comparison) map[string]*targetTallies {
	short := map[string]string{labelSelf: "ss", labelEpoll: "ep", labelNet: "net", labelGnet: "gnet", labelBaseline: "base", labelGorilla: "gorilla"}
	name := func(l string) string { return cmp.Or(short[l], l) }
	// width is a column's width: at least min, and wide enough for its header.
	width := func(min int, header string) int { return max(min, utf8.RuneCountInString(header)) }
	var mine []string // the supersocket servers with runs here
	for _, l := range selves {
		if slices.Contains(order, l) {
			mine = append(mine, l)
		}
	}
	tallies := map[string]*targetTallies{}
	for _, l := range mine {
		tallies[l] = &targetTallies{}
	}
	section := ""
	for _, k := range keys {
		byLabel := cells[k]
		if k.section() != section {
			section = k.section()
			fmt.Fprintf(w, "== %s\n", section)
			var hdr strings.Builder
			fmt.Fprintf(&hdr, "%-22s", "conns pipe size")
			for _, l := range order {
				fmt.Fprintf(&hdr, " %*s", width(9, name(l)+" msg/s"), name(l)+" msg/s")
			}
			for _, l := range mine {
				fmt.Fprintf(&hdr, " %*s", width(8, name(l)+"÷"+name(c.rateRef)), name(l)+"÷"+name(c.rateRef))
			}
			for _, l := range order {
				fmt.Fprintf(&hdr, " %*s", width(10, name(l)+" CPU"), name(l)+" CPU")
			}
			for _, l := range mine {
				fmt.Fprintf(&hdr, " %*s", width(8, name(l)+"÷"+name(c.cpuRef)), name(l)+"÷"+name(c.cpuRef))
			}
			for _, l := range order {
				fmt.Fprintf(&hdr, " %*s", width(9, name(l)+" p99"), name(l)+" p99")
			}
			for _, l := range order {
				fmt.Fprintf(&hdr, " %*s", width(8, name(l)+" sys"), name(l)+" sys")
			}
			fmt.Fprintf(&hdr, " %9s %4s %s", "load CPU", "runs", "errors")
			fmt.Fprintln(w, hdr.String())
		}
		st := map[string]cellStats{}
		runs, errs := 0, int64(0)
		maxClient := 0.0
		for _, l := range order {
			if rs, ok := byLabel[l]; ok {
				s := summarize(rs)
				st[l] = s
				runs = max(runs, s.runs)
				errs += s.errors
				maxClient = math.Max(maxClient, s.clientUtil)
			}
		}
		get := func(l string, f func(cellStats) float64) float64 {
			if s, ok := st[l]; ok {
				return f(s)
			}
			return math.NaN()
		}
		rate := func(s cellStats) float64 { return s.msgsPerSec }
		cpu := func(s cellStats) float64 { return s.cpuPerMsg }
		p99 := func(s cellStats) float64 { return s.p99 }
		fmt.Fprintf(w, "%5d %4d %-11s", k.conns, k.pipeline, fmtSize(k.size))
		for _, l := range order {
			fmt.Fprintf(w, " %*s", width(9, name(l)+" msg/s"), fmtRate(get(l, rate)))
		}
		for _, l := range mine {
			fmt.Fprintf(w, " %*s", width(8, name(l)+"÷"+name(c.rateRef)), fmtRatio(get(l, rate), get(c.rateRef, rate)))
		}
		for _, l := range order {
			fmt.Fprintf(w, " %*s", width(10, name(l)+" CPU"), fmtNs(get(l, cpu)))
		}
		for _, l := range mine {
			fmt.Fprintf(w, " %*s", width(8, name(l)+"÷"+name(c.cpuRef)), fmtRatio(get(l, cpu), get(c.cpuRef, cpu)))
		}
		for _, l := range order {
			fmt.Fprintf(w, " %*s", width(9, name(l)+" p99"), fmtNs(get(l, p99)*1e3))
		}
		for _, l := range order {
			if v := get(l, func(s cellStats) float64 { return s.syscalls }); math.IsNaN(v) {
				fmt.Fprintf(w, " %*s", width(8, name(l)+" sys"), "-")
			} else {
				fmt.Fprintf(w, " %*.3f", width(8, name(l)+" sys"), v)
			}
		}
		mark := " "
		saturated := maxClient >= saturatedLoadCPU
		if saturated {
			mark = "*"
		}
		fmt.Fprintf(w, " %8.2f%s %4d %d\n", maxClient, mark, runs, errs)

		cell := k.name()
		for _, self := range mine {
			t := tallies[self]
			t.saturated = t.saturated || saturated
			// The epoll engine's msgs/s target holds where the load tool is not the
			// bottleneck.
			if !saturated || self != labelEpoll {
				t.rate.tally(cell, get(self, rate)/get(c.rateRef, rate), c.rateMin, true,
					runRatios(byLabel[self], byLabel[c.rateRef], func(r resultJSON) (float64, bool) { return r.MsgsPerSec, true }),
					func() string {
						// Where the load tool was saturated, msgs/s measured it as much as
						// the server: say what the fair figure, CPU per message, reads there.
						if !saturated {
							return ""
						}
						return fmt.Sprintf("; load tool saturated: %s ÷ %s CPU/msg %s", name(self), c.rateRef, fmtRatio(get(self, cpu), get(c.rateRef, cpu)))
					})
			}
			t.cpu.tally(cell, get(self, cpu)/get(c.cpuRef, cpu), c.cpuMax, false,
				runRatios(byLabel[self], byLabel[c.cpuRef], cpuOf), nil)
			if self == labelEpoll && k.conns == targetP99Conns && k.pipeline == 1 {
				t.p99.tally(cell, get(self, p99)/get(labelSelf, p99), targetEpollP99, false,
					runRatios(byLabel[self], byLabel[labelSelf], func(r resultJSON) (float64, bool) {
						return latencyP99(r), r.LatencyUS != nil
					}), nil)
			}
		}
	}
	return tallies
}

// cpuOf is a run's server CPU per message, if it has one.
func cpuOf(r resultJSON) (float64, bool) {
	if r.ServerCPUNsPerMsg == nil {
		return 0, false
	}
	return *r.ServerCPUNsPerMsg, true
}

// latencyP99 is a run's p99 latency, µs.
func latencyP99(r resultJSON) float64 {
	if r.LatencyUS == nil {
		return 0
	}
	return r.LatencyUS.P99
}

// tally adds a cell's ratio to t (ignored if it is not a number): a miss when it is below
// bound (atLeast) or above it; runs are the cell's per-run ratios, and more adds to a
// miss's note.
func (t *targetTally) tally(cell string, ratio, bound float64, atLeast bool, runs []float64, more func() string) {
	if math.IsNaN(ratio) || math.IsInf(ratio, 0) {
		return
	}
	t.ratios = append(t.ratios, ratio)
	if atLeast && ratio >= bound || !atLeast && ratio <= bound {
		return
	}
	if len(runs) > 0 && (atLeast && slices.Max(runs) >= bound || !atLeast && slices.Min(runs) <= bound) {
		t.noise++
	}
	note := ""
	if more != nil {
		note = more()
	}
	t.misses = append(t.misses, fmt.Sprintf("%s (%.2f×%s%s)", cell, ratio, fmtSpread(runs), note))
}

// writeTarget prints the verdict on one target, such as "supersocket ÷ net msgs/s >= 1.00
// in every cell": how many of the cells with a ratio met it, the median ratio, each miss,
// and how many misses have a run pair that meets it (side: "at or above" or "at or below"
// bound), which puts them within the run-to-run spread. It prints nothing without ratios.
func writeTarget(w io.Writer, target string, ratios []float64, misses []string, noise int, side string, bound float64) {
	if len(ratios) == 0 {
		return
	}
	fmt.Fprintf(w, "target %s: %d of %d cells met (median ratio %.2f×)\n", target, len(ratios)-len(misses), len(ratios), median(ratios))
	for _, m := range misses {
		fmt.Fprintf(w, "  missed: %s\n", m)
	}
	if len(misses) > 0 {
		fmt.Fprintf(w, "  (%d of the %d misses have a run pair %s %.2f×: within the run-to-run spread)\n",
			noise, len(misses), side, bound)
	}
}
