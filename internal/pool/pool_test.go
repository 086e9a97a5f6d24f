package pool

import "testing"

func TestGetRoundsUpAndReuses(t *testing.T) {
	for _, n := range []int{1, 511, 512, 513, 4096, 5000, 1 << 22} {
		b := Get(n)
		if len(b) != n {
			t.Fatalf("Get(%d): len %d", n, len(b))
		}
		if c := cap(b); c < n || c&(c-1) != 0 {
			t.Fatalf("Get(%d): cap %d is not a power of two ≥ n", n, c)
		}
		Put(b)
	}
	big := Get(1<<22 + 1)
	if len(big) != 1<<22+1 {
		t.Fatalf("large Get: len %d", len(big))
	}
	Put(big) // dropped, must not panic
	Put(make([]byte, 100, 300))
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Put(Get(4096))
	}
}
