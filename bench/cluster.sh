#!/usr/bin/env bash
# bench/cluster.sh — the cluster package's benchmarks against raw NATS, in the same run.
#
# Builds the cluster package's test binary once, then runs ROUNDS rounds; each round runs
# every benchmark of BENCH once, in order, so the baseline (BenchmarkRawNATS, and the
# one-node room) and what is compared with it take turns on the machine and share its
# noise. Reports benchstat's medians of every metric, then the median and range of the
# per-round ratios the targets name:
#
#   remote SendTo ÷ raw NATS, remote Post ÷ raw NATS       (msgs/s, target ≥ 0.5)
#   remote SendToAsync ÷ raw NATS                           (SENDERS goroutines, WINDOW calls
#                                                            in flight each; target ≥ 0.5)
#   room fan-out over 3 nodes ÷ on 1 node                   (deliveries/s, target ≥ 0.5)
#
# and the latency benchmark's figures (p50/p99 of local and remote sends at half the
# measured peak; target: remote p99 ≤ 2 ms), and, when BENCH includes RoundTrip, the
# ceiling that one call's round trip sets on SENDERS waiting callers (SENDERS ÷ round
# trip) ÷ raw NATS.
#
# BASE=<commit> also builds the package's test binary at that commit and runs its
# BASEBENCH (default 'SendTo/remote') after the others in every round, reported as
# BenchmarkBase…: a before/after comparison in the same run, under the same noise.
#
# Usage:
#   bench/cluster.sh                       ROUNDS=5, every benchmark
#   ROUNDS=8 BENCH='RawNATS|SendTo' bench/cluster.sh
#   SENDERS=256 bench/cluster.sh           more concurrent SendTo callers (default 64)
#   WINDOW=16 BENCH='RawNATS$|SendToAsync' bench/cluster.sh   SendToAsync calls in flight per sender (default 64)
#   BASE=main BENCH='RawNATS$|SendTo/remote' bench/cluster.sh   this tree against main
#
# Settings (environment): ROUNDS=5 BENCHTIME=1s BENCH=. SENDERS=64 WINDOW=64 OUT=<dir>
#                         BASE=<commit> BASEBENCH='SendTo/remote'
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-5}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-.}
export SENDERS=${SENDERS:-64}
export WINDOW=${WINDOW:-64}
OUT=${OUT:-$(mktemp -d /tmp/supersocket-cluster-bench.XXXXXX)}
mkdir -p "$OUT"

bin="$OUT/cluster.test"
(cd "$root" && go test -c -o "$bin" ./cluster)
BASE=${BASE:-}
BASEBENCH=${BASEBENCH:-SendTo/remote}
if [ -n "$BASE" ]; then
	base_src="$OUT/base-src"
	mkdir -p "$base_src"
	(cd "$root" && git archive "$BASE") | tar -x -C "$base_src"
	(cd "$base_src" && go test -c -o "$OUT/cluster-base.test" ./cluster)
fi
{
	echo "date: $(date -u +%FT%TZ)"
	echo "commit: $(cd "$root" && git rev-parse --short HEAD)$(cd "$root" && git diff --quiet || echo '+dirty')"
	echo "cpus: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "senders: $SENDERS; window: $WINDOW; rounds: $ROUNDS; benchtime: $BENCHTIME"
	[ -z "$BASE" ] || echo "base: $BASE ($(cd "$root" && git rev-parse --short "$BASE")), running $BASEBENCH"
} | tee "$OUT/machine.txt"

: >"$OUT/bench.txt"
run_base() {
	if [ -n "$BASE" ]; then
		(cd "$root/cluster" && "$OUT/cluster-base.test" -test.run '^$' -test.bench "$BASEBENCH" -test.benchtime "$BENCHTIME" -test.benchmem) |
			grep -E '^Benchmark' | sed "s/^Benchmark/BenchmarkBase/" >>"$OUT/bench.txt"
	fi
}
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	# The base's benchmarks run after this tree's in odd rounds, before them in even ones.
	[ $((r % 2)) = 1 ] || run_base
	(cd "$root/cluster" && "$bin" -test.run '^$' -test.bench "$BENCH" -test.benchtime "$BENCHTIME" -test.benchmem) |
		grep -E '^(Benchmark|goos|goarch|pkg|cpu)' | sed "s/^Benchmark/Benchmark/" >>"$OUT/bench.txt"
	[ $((r % 2)) = 0 ] || run_base
	echo "round-end" >>"$OUT/bench.txt"
done

echo
if command -v benchstat >/dev/null; then
	grep -v "^round-end" "$OUT/bench.txt" >"$OUT/bench.stat.txt"
	benchstat "$OUT/bench.stat.txt" | tee "$OUT/benchstat.txt" || true
else
	echo "(benchstat not found: go install golang.org/x/perf/cmd/benchstat@latest)"
fi

# Ratios per round, then their median and range.
awk '
function metric(line, unit,   i, n, f) {
	n = split(line, f, /[ \t]+/)
	for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
	return ""
}
function name(line) { sub(/-[0-9]+$/, "", line); split(line, f, /[ \t]+/); x = f[1]; sub(/-[0-9]+$/, "", x); return x }
function flush() {
	if (raw != "" && remote != "") ratios["SendTo remote ÷ raw NATS"] = ratios["SendTo remote ÷ raw NATS"] " " remote / raw
	if (raw != "" && async != "") ratios["SendToAsync remote ÷ raw NATS"] = ratios["SendToAsync remote ÷ raw NATS"] " " async / raw
	if (raw != "" && post != "") ratios["Post remote ÷ raw NATS"] = ratios["Post remote ÷ raw NATS"] " " post / raw
	if (one != "" && three != "") ratios["room 3 nodes ÷ 1 node"] = ratios["room 3 nodes ÷ 1 node"] " " three / one
	if (raw != "" && ceil != "") ratios["ceiling (SENDERS ÷ round trip) ÷ raw NATS"] = ratios["ceiling (SENDERS ÷ round trip) ÷ raw NATS"] " " ceil / raw
	if (raw != "" && bremote != "") ratios["base SendTo remote ÷ raw NATS"] = ratios["base SendTo remote ÷ raw NATS"] " " bremote / raw
	if (raw != "" && bpost != "") ratios["base Post remote ÷ raw NATS"] = ratios["base Post remote ÷ raw NATS"] " " bpost / raw
	raw = remote = async = post = one = three = ceil = bremote = bpost = ""
}
/^round-end/ { flush(); next }
/^Benchmark/ {
	n = name($1)
	if (n == "BenchmarkRawNATS") raw = metric($0, "msgs/s")
	if (n == "BenchmarkSendTo/remote") remote = metric($0, "msgs/s")
	if (n == "BenchmarkSendToAsync/remote") async = metric($0, "msgs/s")
	if (n == "BenchmarkPost/remote") post = metric($0, "msgs/s")
	if (n == "BenchmarkRoomFanout/1node") one = metric($0, "deliveries/s")
	if (n == "BenchmarkRoomFanout/3nodes") three = metric($0, "deliveries/s")
	if (n == "BenchmarkRoundTrip/SendTo") ceil = metric($0, "ceiling-msgs/s")
	if (n == "BenchmarkBaseSendTo/remote") bremote = metric($0, "msgs/s")
	if (n == "BenchmarkBasePost/remote") bpost = metric($0, "msgs/s")
}
END {
	for (k in ratios) {
		m = split(substr(ratios[k], 2), v, " ")
		# sort v
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
		printf "%-42s median %.2f  (min %.2f, max %.2f, %d rounds)\n", k, med, v[1], v[m], m
	}
}' "$OUT/bench.txt" | sort | tee "$OUT/ratios.txt"
echo "raw results: $OUT"
