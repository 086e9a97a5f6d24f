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
	tallies := map[string]*targetTallies{}
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
			saturated = saturated || t.saturated
		}
	}
	fmt.Fprintln(w)
	if saturated {
		fmt.Fprintln(w, "* the load tool used >= 0.9 of its core: msgs/s there is bounded by the load tool; compare CPU/msg.")
	}
	for _, transport := range []string{transportTCP, transportWS} {
		if t := tallies[transport]; t != nil {
			c := comparisons[transport]
			writeTarget(w, fmt.Sprintf("supersocket ÷ %s msgs/s >= %.2f in %s", c.rateRef, c.rateMin, c.cells),
				t.rate.ratios, t.rate.misses, t.rate.noise, "at or above", c.rateMin)
			writeTarget(w, fmt.Sprintf("supersocket ÷ %s server CPU/msg <= %.2f%s", c.cpuRef, c.cpuMax,
				map[string]string{transportWS: " (WebSocket)"}[transport]),
				t.cpu.ratios, t.cpu.misses, t.cpu.noise, "at or below", c.cpuMax)
		}
	}
	fmt.Fprintln(w)
	writeBaselineReport(w, cells, keys)
}

// targetTally is one target's cell ratios and misses; noise counts the misses with a run
// pair that meets the target (within the run-to-run spread rather than a consistent gap).
type targetTally struct {
	ratios []float64
	misses []string
	noise  int
}

// targetTallies are a row group's tallies of its two targets.
type targetTallies struct {
	rate, cpu targetTally
	saturated bool // a cell's load tool was saturated
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
// of comparison c, and returns the tallies of c's targets.
func writeLoadRows(w io.Writer, cells map[cellKey]map[string][]resultJSON, keys []cellKey, order []string, c comparison) *targetTallies {
	short := map[string]string{labelSelf: "ss", labelNet: "net", labelGnet: "gnet", labelBaseline: "base", labelGorilla: "gorilla"}
	name := func(l string) string { return cmp.Or(short[l], l) }
	// width is a column's width: at least min, and wide enough for its header.
	width := func(min int, header string) int { return max(min, utf8.RuneCountInString(header)) }
	rateW, cpuW := width(8, "ss÷"+name(c.rateRef)), width(8, "ss÷"+name(c.cpuRef))
	t := &targetTallies{}
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
			fmt.Fprintf(&hdr, " %*s", rateW, "ss÷"+name(c.rateRef))
			for _, l := range order {
				fmt.Fprintf(&hdr, " %*s", width(10, name(l)+" CPU"), name(l)+" CPU")
			}
			fmt.Fprintf(&hdr, " %*s", cpuW, "ss÷"+name(c.cpuRef))
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
		rRate := get(labelSelf, rate) / get(c.rateRef, rate)
		fmt.Fprintf(w, " %*s", rateW, fmtRatio(get(labelSelf, rate), get(c.rateRef, rate)))
		for _, l := range order {
			fmt.Fprintf(w, " %*s", width(10, name(l)+" CPU"), fmtNs(get(l, cpu)))
		}
		rCPU := get(labelSelf, cpu) / get(c.cpuRef, cpu)
		fmt.Fprintf(w, " %*s", cpuW, fmtRatio(get(labelSelf, cpu), get(c.cpuRef, cpu)))
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
		if maxClient >= saturatedLoadCPU {
			mark, t.saturated = "*", true
		}
		fmt.Fprintf(w, " %8.2f%s %4d %d\n", maxClient, mark, runs, errs)

		cell := k.name()
		if !math.IsNaN(rRate) && !math.IsInf(rRate, 0) {
			t.rate.ratios = append(t.rate.ratios, rRate)
			if rRate < c.rateMin {
				runs := runRatios(byLabel[labelSelf], byLabel[c.rateRef], func(r resultJSON) (float64, bool) { return r.MsgsPerSec, true })
				if len(runs) > 0 && slices.Max(runs) >= c.rateMin {
					t.rate.noise++
				}
				// Where the load tool was saturated, msgs/s measured it as much as the
				// server: say what the fair figure, CPU per message, reads there.
				fair := ""
				if maxClient >= saturatedLoadCPU {
					fair = fmt.Sprintf("; load tool saturated: ss ÷ %s CPU/msg %s", c.rateRef, fmtRatio(get(labelSelf, cpu), get(c.rateRef, cpu)))
				}
				t.rate.misses = append(t.rate.misses, fmt.Sprintf("%s (%.2f×%s%s)", cell, rRate, fmtSpread(runs), fair))
			}
		}
		if !math.IsNaN(rCPU) && !math.IsInf(rCPU, 0) {
			t.cpu.ratios = append(t.cpu.ratios, rCPU)
			if rCPU > c.cpuMax {
				runs := runRatios(byLabel[labelSelf], byLabel[c.cpuRef], func(r resultJSON) (float64, bool) {
					if r.ServerCPUNsPerMsg == nil {
						return 0, false
					}
					return *r.ServerCPUNsPerMsg, true
				})
				if len(runs) > 0 && slices.Min(runs) <= c.cpuMax {
					t.cpu.noise++
				}
				t.cpu.misses = append(t.cpu.misses, fmt.Sprintf("%s (%.2f×%s)", cell, rCPU, fmtSpread(runs)))
			}
		}
	}
	return t
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
