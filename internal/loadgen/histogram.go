package loadgen

import (
	"math"
	"math/bits"
)

// histogram records durations in nanoseconds in log-linear buckets, the layout of
// HdrHistogram: values below 2^histSubBits get a bucket each; above that, every power-of-
// two range is split into 2^histSubBits equal buckets. A recorded value is therefore
// known to within 1/2^histSubBits of itself (0.8 % with 7 bits), at a fixed memory cost
// whatever the number of samples, and two histograms merge by adding their counts.
//
// A histogram is used by one goroutine at a time; the load generator keeps one per
// connection and merges them at the end.
type histogram struct {
	counts   []uint64
	n        uint64
	sum      float64 // for the mean
	min, max int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// histMaxBits bounds recorded values to 2^histMaxBits ns (about 18 minutes); larger
	// ones are clamped.
	histMaxBits = 40
	histBuckets = (histMaxBits-histSubBits)*histSub + histSub
	histMax     = int64(1)<<histMaxBits - 1
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, histBuckets), min: math.MaxInt64}
}

// bucketOf returns the bucket index of v (0 ≤ v ≤ histMax).
func bucketOf(v int64) int {
	u := uint64(v)
	shift := bits.Len64(u) - histSubBits - 1
	if shift < 0 {
		shift = 0
	}
	return shift*histSub + int(u>>uint(shift))
}

// bucketRange returns the smallest value of bucket i and the bucket's width.
func bucketRange(i int) (lo, width int64) {
	if i < 2*histSub {
		return int64(i), 1
	}
	shift := i/histSub - 1
	top := int64(i - shift*histSub) // in [histSub, 2*histSub)
	return top << uint(shift), int64(1) << uint(shift)
}

// record adds one value, in nanoseconds; negative values count as 0.
func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	}
	if v > histMax {
		v = histMax
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// merge adds o's samples to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

func (h *histogram) count() uint64 { return h.n }

func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// quantile returns the value at quantile q (0 ≤ q ≤ 1): the middle of the bucket that
// holds the ⌈q·n⌉-th smallest sample, clamped to the exact minimum and maximum; the
// smallest and largest samples are known exactly. It is 0 for an empty histogram.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	rank = min(rank, h.n)
	switch rank {
	case 1:
		return h.min
	case h.n:
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			v := lo + (w-1)/2
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// percentile is quantile with p in percent.
func (h *histogram) percentile(p float64) int64 { return h.quantile(p / 100) }
