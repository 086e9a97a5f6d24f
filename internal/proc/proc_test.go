package proc

import (
	"os"
	"testing"
	"time"
)

func TestParsing(t *testing.T) {
	stat := []byte("1234 (my (odd) server) S 1 1234 1234 0 -1 4194560 2811 0 0 0 250 75 0 0 20 0 9 0 1234 0 0\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3250*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.25s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Error("parseStatCPU accepted garbage")
	}
	rss, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t  999 kB\nVmRSS:\t    2048 kB\nThreads: 3\n"))
	if err != nil || rss != 2048<<10 {
		t.Errorf("parseVmRSS = %d, %v", rss, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("parseVmRSS without VmRSS")
	}
	pio, err := parseIO([]byte("rchar: 1\nwchar: 2\nsyscr: 30\nsyscw: 40\nread_bytes: 0\n"))
	if err != nil || pio != (IO{Reads: 30, Writes: 40}) {
		t.Errorf("parseIO = %+v, %v", pio, err)
	}
	if _, err := parseIO([]byte("rchar: 1\n")); err == nil {
		t.Error("parseIO without syscr")
	}
}

// TestSelf reads this process's own figures.
func TestSelf(t *testing.T) {
	if _, err := CPU(os.Getpid()); err != nil {
		t.Error(err)
	}
	if n, err := RSS(os.Getpid()); err != nil || n <= 0 {
		t.Errorf("RSS = %d, %v", n, err)
	}
	if _, err := ReadIO(os.Getpid()); err != nil {
		t.Error(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	n, err := OpenFiles(os.Getpid())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m, err := OpenFiles(os.Getpid()); err != nil || m >= n {
		t.Errorf("OpenFiles = %d with one more file open, %d (%v) after closing it", n, m, err)
	}
}
