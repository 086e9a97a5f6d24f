package loadgen

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"os"
)

// writePlotFile writes h as an SVG latency-by-percentile plot to path.
func writePlotFile(path, title string, h *histogram) error {
	var b bytes.Buffer
	writePlot(&b, title, h)
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// writePlot draws the latency distribution the way HdrHistogram's plots do: latency
// against percentile, the percentile axis stretched by "nines" (log10 of 1/(1-q)) so the
// tail from 90 % to 99.99 % gets as much room as the body.
func writePlot(w io.Writer, title string, h *histogram) {
	const (
		width, height = 760, 440
		left, right   = 80, 30
		top, bottom   = 50, 60
		plotW         = width - left - right
		plotH         = height - top - bottom
	)
	// The percentile axis goes as far as the samples allow, 2 to 5 nines.
	nines := 2.0
	if h.n > 0 {
		nines = math.Min(5, math.Max(2, math.Floor(math.Log10(float64(h.n)))))
	}
	type point struct{ x, y float64 }
	var pts []point
	maxY := 0.0
	for k := 0.0; k <= nines+1e-9; k += nines / 200 {
		q := 1 - math.Pow(10, -k)
		v := float64(h.quantile(q))
		pts = append(pts, point{k, v})
		maxY = math.Max(maxY, v)
	}
	if h.n > 0 {
		maxY = math.Max(maxY, float64(h.max))
	}
	scale, unit := 1.0, "ns"
	switch {
	case maxY >= 1e9:
		scale, unit = 1e9, "s"
	case maxY >= 1e6:
		scale, unit = 1e6, "ms"
	case maxY >= 1e3:
		scale, unit = 1e3, "µs"
	}
	yStep := niceStep(maxY/scale, 6)
	yTop := math.Max(yStep, math.Ceil(maxY/scale/yStep)*yStep)
	px := func(k float64) float64 { return left + k/nines*plotW }
	py := func(v float64) float64 { return top + plotH - v/scale/yTop*plotH }

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString("latency by percentile — "+title))
	fmt.Fprintf(w, `<text x="%d" y="40" fill="#555">%s samples, max %s, histogram precision 0.8 %%</text>`+"\n", left, group(int64(h.n)), html.EscapeString(fmtDur(float64(h.max))))
	// Grid and y labels.
	for i := 0.0; i*yStep <= yTop+yStep/2; i++ {
		v := i * yStep
		y := py(v * scale)
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, axisLabel(v, yStep))
	}
	// x labels, one per nine.
	for k := 0.0; k <= nines+1e-9; k++ {
		x := px(k)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, top+plotH)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, top+plotH+18, ninesLabel(k))
	}
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", left+plotW/2, height-16)
	fmt.Fprintf(w, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">latency (%s)</text>`+"\n", top+plotH/2, top+plotH/2, unit)
	if h.n > 0 {
		fmt.Fprint(w, `<polyline fill="none" stroke="#1f6fb4" stroke-width="2" points="`)
		for i, p := range pts {
			if i > 0 {
				fmt.Fprint(w, " ")
			}
			fmt.Fprintf(w, "%.1f,%.1f", px(p.x), py(p.y))
		}
		fmt.Fprint(w, `"/>`+"\n")
		for _, m := range []struct {
			k    float64
			name string
		}{{math.Log10(2), "p50"}, {2, "p99"}, {3, "p99.9"}} {
			if m.k > nines {
				continue
			}
			v := float64(h.quantile(1 - math.Pow(10, -m.k)))
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="#c0392b"/>`+"\n", px(m.k), py(v))
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="#c0392b">%s %s</text>`+"\n", px(m.k)+6, py(v)-6, m.name, html.EscapeString(fmtDur(v)))
		}
	} else {
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">no samples</text>`+"\n", left+plotW/2, top+plotH/2)
	}
	fmt.Fprintln(w, `</svg>`)
}

// niceStep returns a step of 1, 2 or 5 × 10^k that splits [0, span] into about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// axisLabel formats a tick value v with as many decimals as the step needs.
func axisLabel(v, step float64) string {
	return fmt.Sprintf("%.*f", max(0, int(-math.Floor(math.Log10(step)))), v)
}

// ninesLabel names the percentile k nines out: 0 → 0 %, 1 → 90 %, 2 → 99 %, 3 → 99.9 %.
func ninesLabel(k float64) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	}
	return fmt.Sprintf("%.*f%%", int(k)-2, 100-math.Pow(10, 2-k))
}
