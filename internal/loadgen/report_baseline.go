package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
)

// labelBaseline is the label of a supersocket build from an earlier revision, run beside
// the current one (bench/run.sh: BASELINE=<rev> adds it to SERVERS): the comparison that
// says whether a change regressed.
const labelBaseline = "baseline"

// baselineSpread is how far a cell's median ratio to the baseline may stray from 1.0
// before the report calls it a change rather than noise, unless its paired runs span 1.0.
const baselineSpread = 0.05

// writeBaselineReport compares the current build with the baseline cell by cell: the
// median of the paired per-run ratios of msgs/s and of server CPU per message, their
// range, and a verdict per figure: a regression is a median ratio past baselineSpread in
// the wrong direction whose paired runs all agree (none crosses 1.0). It prints nothing
// without baseline runs.
func writeBaselineReport(w io.Writer, cells map[cellKey]map[string][]resultJSON, keys []cellKey) {
	rateOf := func(r resultJSON) (float64, bool) { return r.MsgsPerSec, r.MsgsPerSec > 0 }
	cpuOf := func(r resultJSON) (float64, bool) {
		// CPU time comes in 10 ms ticks: a run too short to see one has no figure.
		if r.ServerCPUNsPerMsg == nil || *r.ServerCPUNsPerMsg <= 0 {
			return 0, false
		}
		return *r.ServerCPUNsPerMsg, true
	}
	var rates, cpus []float64
	var worse []string
	header := false
	for _, k := range keys {
		self, base := cells[k][labelSelf], cells[k][labelBaseline]
		if len(self) == 0 || len(base) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "Against the baseline build (ss ÷ baseline, medians of run pairs; msgs/s higher is better, CPU/msg lower):")
			fmt.Fprintf(w, "%-36s %10s %16s %10s %16s\n", "cell", "msgs/s", "runs", "CPU/msg", "runs")
			header = true
		}
		r := runRatios(self, base, rateOf)
		c := runRatios(self, base, cpuOf)
		cell := k.name()
		fmt.Fprintf(w, "%-36s %10s %16s %10s %16s\n", cell, fmtMedianRatio(r), fmtRange(r), fmtMedianRatio(c), fmtRange(c))
		if len(r) > 0 {
			rates = append(rates, median(r))
			if median(r) < 1-baselineSpread && slices.Max(r) < 1 {
				worse = append(worse, fmt.Sprintf("%s msgs/s %.2f×", cell, median(r)))
			}
		}
		if len(c) > 0 {
			cpus = append(cpus, median(c))
			if median(c) > 1+baselineSpread && slices.Min(c) > 1 {
				worse = append(worse, fmt.Sprintf("%s CPU/msg %.2f×", cell, median(c)))
			}
		}
	}
	if !header {
		return
	}
	fmt.Fprintf(w, "median over cells: msgs/s %.2f×, CPU/msg %.2f×\n", median(rates), median(cpus))
	if len(worse) == 0 {
		fmt.Fprintf(w, "no cell regressed beyond %.0f %% with every run pair agreeing\n", 100*baselineSpread)
	}
	for _, m := range worse {
		fmt.Fprintf(w, "  regressed: %s (every run pair worse)\n", m)
	}
	fmt.Fprintln(w)
}

func fmtMedianRatio(rs []float64) string {
	if len(rs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f×", median(rs))
}

func fmtRange(rs []float64) string {
	if len(rs) == 0 {
		return "-"
	}
	lo, hi := slices.Min(rs), slices.Max(rs)
	if math.IsNaN(lo) {
		return "-"
	}
	return fmt.Sprintf("%.2f–%.2f×", lo, hi)
}
