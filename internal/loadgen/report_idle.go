package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
)

// idleKey identifies a row group of the idle table.
type idleKey struct{ label, proto, transport string }

// writeIdleReport prints the idle table, a row per server, protocol, transport and
// connection count, and the verdicts on the idle-memory targets: supersocket's bytes per
// connection over TCP, and over WebSocket against its own TCP figure.
func writeIdleReport(w io.Writer, idle map[idleKey]map[int][]resultJSON, order []string) {
	fmt.Fprintln(w, "Idle connections: the server's VmRSS growth ÷ connections, after one exchange each (medians).")
	fmt.Fprintf(w, "%-17s %-6s %-9s %8s %14s %14s %12s %4s %s\n", "server", "proto", "transport", "conns", "RSS/conn", "RSS growth", "open", "runs", "errors")
	keys := make([]idleKey, 0, len(idle))
	for k := range idle {
		keys = append(keys, k)
	}
	rank := func(l string) int { return slices.Index(order, l) }
	slices.SortFunc(keys, func(a, b idleKey) int {
		return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.transport, b.transport), cmp.Compare(rank(a.label), rank(b.label)))
	})
	selfAt := map[[2]string]float64{}  // (proto, transport) → supersocket's RSS/conn at targetIdleConns
	epollAt := map[[2]string]float64{} // (proto, conns) → supersocket-epoll's RSS/conn over TCP
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
			fmt.Fprintf(w, "%-17s %-6s %-9s %8d %11.2f KB %11.1f MB %12.0f %4d %d\n",
				k.label, k.proto, k.transport, n, mp/1e3, median(growth)/1e6, median(open), len(rs), errs)
			if k.label == labelSelf && n == targetIdleConns && !math.IsNaN(mp) {
				selfAt[[2]string{k.proto, k.transport}] = mp
			}
			if k.label == labelEpoll && k.transport == transportTCP && !math.IsNaN(mp) {
				epollAt[[2]string{k.proto, fmt.Sprint(n)}] = mp
			}
		}
	}
	fmt.Fprintln(w)
	for _, k := range keys {
		if k.label != labelEpoll || k.transport != transportTCP {
			continue
		}
		if mp, ok := epollAt[[2]string{k.proto, fmt.Sprint(targetEpollIdleConns)}]; ok {
			fmt.Fprintf(w, "target %s idle RSS <= %.1f KB/conn at %d connections (%s): %.2f KB, %s\n",
				labelEpoll, targetEpollIdleBytes/1e3, targetEpollIdleConns, k.proto, mp/1e3, verdict(mp > targetEpollIdleBytes))
		} else {
			fmt.Fprintf(w, "target %s idle RSS <= %.1f KB/conn at %d connections (%s): not measured\n",
				labelEpoll, targetEpollIdleBytes/1e3, targetEpollIdleConns, k.proto)
		}
	}
	for _, k := range keys {
		if k.label != labelSelf {
			continue
		}
		mp, ok := selfAt[[2]string{k.proto, k.transport}]
		if !ok {
			continue
		}
		switch k.transport {
		case transportTCP:
			fmt.Fprintf(w, "target supersocket idle RSS <= %.1f KB/conn at %d connections (%s): %.2f KB, %s\n",
				targetIdleBytes/1e3, targetIdleConns, k.proto, mp/1e3, verdict(mp > targetIdleBytes))
		case transportWS:
			tcp, ok := selfAt[[2]string{k.proto, transportTCP}]
			if !ok {
				fmt.Fprintf(w, "target supersocket WebSocket idle RSS <= %.1f× its TCP figure at %d connections (%s): %.2f KB, no TCP run to compare\n",
					targetWSIdleVsTCP, targetIdleConns, k.proto, mp/1e3)
				continue
			}
			fmt.Fprintf(w, "target supersocket WebSocket idle RSS <= %.1f× its TCP figure at %d connections (%s): %.2f KB ÷ %.2f KB = %.2f×, %s\n",
				targetWSIdleVsTCP, targetIdleConns, k.proto, mp/1e3, tcp/1e3, mp/tcp, verdict(mp/tcp > targetWSIdleVsTCP))
		}
	}
}
