package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
)

// writeIdleReport prints the idle table, a row per server, protocol and connection count,
// and the verdict on the idle-memory target.
func writeIdleReport(w io.Writer, idle map[[2]string]map[int][]resultJSON, order []string) {
	fmt.Fprintln(w, "Idle connections: the server's VmRSS growth ÷ connections, after one exchange each (medians).")
	fmt.Fprintf(w, "%-12s %-6s %8s %14s %14s %12s %4s %s\n", "server", "proto", "conns", "RSS/conn", "RSS growth", "open", "runs", "errors")
	keys := make([][2]string, 0, len(idle))
	for k := range idle {
		keys = append(keys, k)
	}
	rank := func(l string) int { return slices.Index(order, l) }
	slices.SortFunc(keys, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[1], b[1]), cmp.Compare(rank(a[0]), rank(b[0])))
	})
	var verdicts []string
	for _, k := range keys {
		byConns := idle[k]
		conns := make([]int, 0, len(byConns))
		for n := range byConns {
			conns = append(conns, n)
		}
		slices.Sort(conns)
		for _, n := range conns {
			rs := byConns[n]
			var per, growth, open []float64
			var errs int64
			for _, r := range rs {
				errs += r.Errors
				open = append(open, float64(r.OpenConns))
				if r.RSSPerConn != nil {
					per = append(per, *r.RSSPerConn)
					growth = append(growth, float64(r.RSSAfter-r.RSSBefore))
				}
			}
			mp := median(per)
			fmt.Fprintf(w, "%-12s %-6s %8d %11.2f KB %11.1f MB %12.0f %4d %d\n",
				k[0], k[1], n, mp/1e3, median(growth)/1e6, median(open), len(rs), errs)
			if k[0] == labelSelf && n == targetIdleConns && !math.IsNaN(mp) {
				ok := "met"
				if mp > targetIdleBytes {
					ok = "MISSED"
				}
				verdicts = append(verdicts, fmt.Sprintf("target supersocket idle RSS <= %.1f KB/conn at %d connections (%s): %.2f KB, %s",
					targetIdleBytes/1e3, targetIdleConns, k[1], mp/1e3, ok))
			}
		}
	}
	fmt.Fprintln(w)
	for _, v := range verdicts {
		fmt.Fprintln(w, v)
	}
}
