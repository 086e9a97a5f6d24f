package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	// Every value maps to a bucket whose range holds it, and buckets are contiguous.
	prevEnd := int64(0)
	for i := range histBuckets {
		lo, w := bucketRange(i)
		if lo != prevEnd {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevEnd)
		}
		if bucketOf(lo) != i || bucketOf(lo+w-1) != i {
			t.Fatalf("bucket %d [%d, %d) does not map back", i, lo, lo+w)
		}
		if lo >= 2*histSub && float64(w)/float64(lo) > 1.0/histSub {
			t.Fatalf("bucket %d: width %d is over 1/%d of %d", i, w, histSub, lo)
		}
		prevEnd = lo + w
	}
	if prevEnd != histMax+1 {
		t.Errorf("buckets end at %d, want %d", prevEnd, histMax+1)
	}
}

// within reports whether got is exact within the histogram's precision.
func within(got, exact int64) bool {
	return math.Abs(float64(got-exact)) <= math.Max(1, float64(exact)/histSub)
}

func TestHistogramPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform 0..1ms":     func() int64 { return rng.Int64N(1_000_000) },
		"exponential 50µs":   func() int64 { return int64(rng.ExpFloat64() * 50_000) },
		"lognormal ~100µs":   func() int64 { return int64(math.Exp(rng.NormFloat64()*1.2 + math.Log(100_000))) },
		"small exact 0..100": func() int64 { return rng.Int64N(101) },
	}
	for name, draw := range dists {
		h := newHistogram()
		samples := make([]int64, 200_000)
		for i := range samples {
			samples[i] = draw()
			h.record(samples[i])
		}
		slices.Sort(samples)
		for _, p := range []float64{0, 1, 50, 90, 99, 99.9, 99.99, 100} {
			rank := max(1, int(math.Ceil(p/100*float64(len(samples)))))
			exact := samples[rank-1]
			if got := h.percentile(p); !within(got, exact) {
				t.Errorf("%s p%v = %d, exact %d: outside the bucket precision", name, p, got, exact)
			}
		}
		if h.min != samples[0] || h.max != samples[len(samples)-1] || h.count() != uint64(len(samples)) {
			t.Errorf("%s: min %d max %d n %d", name, h.min, h.max, h.count())
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	h := newHistogram()
	if h.percentile(99) != 0 || h.mean() != 0 {
		t.Error("empty histogram is not zero")
	}
	h.record(-5)              // clamps to 0
	h.record(histMax + 12345) // clamps to the top
	if h.min != 0 || h.max != histMax || h.percentile(100) != histMax || h.percentile(0) != 0 {
		t.Errorf("clamping: min %d max %d", h.min, h.max)
	}

	// Merging gives the histogram of all the samples.
	a, b, all := newHistogram(), newHistogram(), newHistogram()
	for i := range int64(10_000) {
		v := i * i
		all.record(v)
		if i%3 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(b)
	a.merge(newHistogram())
	for _, p := range []float64{10, 50, 99, 99.9} {
		if a.percentile(p) != all.percentile(p) {
			t.Errorf("merged p%v = %d, want %d", p, a.percentile(p), all.percentile(p))
		}
	}
	if a.count() != all.count() || a.mean() != all.mean() || a.min != all.min || a.max != all.max {
		t.Error("merged summary differs")
	}
}
