package soak

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/supersocket-go/supersocket/internal/cli"
)

// TestSoakShort runs the soak for two seconds with every kind of client, and checks that
// it passes, samples, writes its CSV and counts the load it made.
func TestSoakShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "soak.csv")
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{
		"-duration", "2s", "-interval", "500ms", "-csv", path,
		"-conns", "4", "-pipeline", "2", "-rate", "400", "-churn-rate", "20",
		"-idle", "10", "-udp", "2", "-broadcast-every", "200ms", "-bad-every", "50ms",
	}, &stdout, &stderr)
	out := stdout.String()
	if code != cli.ExitOK {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	for _, want := range []string{"summary", "RSS KiB", "goroutines", "fds", "PASS", "errors: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// header, start, ≥3 load samples, end, stopped
	if len(rows) < 6 {
		t.Fatalf("%d CSV rows, want at least 6:\n%v", len(rows), rows)
	}
	if got := strings.Join(rows[0], ","); got != "seconds,phase,rss_kb,goroutines,fds,heap_inuse_kb,sessions,requests,errors" {
		t.Errorf("CSV header %q", got)
	}
	phases := map[string]int{}
	for _, r := range rows[1:] {
		phases[r[1]]++
		for _, col := range []int{2, 3, 4} {
			if v, err := strconv.Atoi(r[col]); err != nil || v <= 0 {
				t.Errorf("CSV row %v: column %s is %q", r, rows[0][col], r[col])
			}
		}
	}
	if phases["start"] != 1 || phases["end"] != 1 || phases["stopped"] != 1 || phases["load"] < 3 {
		t.Errorf("CSV phases %v, want start, ≥3 load, end, stopped", phases)
	}
	end := rows[len(rows)-2]
	if n, _ := strconv.Atoi(end[7]); n == 0 {
		t.Errorf("no request completed: %v", end)
	}
	for _, kind := range []string{"pipelined, ", "churn cycles", "UDP)", "cut off as expected"} {
		if !strings.Contains(out, kind) {
			t.Errorf("summary lacks %q", kind)
		}
	}
	t.Logf("soak output:\n%s", out)
}

// TestSoakBadFlags: bad flags exit 2 and start nothing.
func TestSoakBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-duration", "0s"},
		{"-interval", "-1s"},
		{"-pipeline", "0"},
		{"-churn-rate", "1000000000000"},
		{"-log-level", "loud"},
		{"-no-such-flag"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, &stdout, &stderr); code != cli.ExitUsage {
			t.Errorf("soak %v: exit status %d, want %d", args, code, cli.ExitUsage)
		}
		if stdout.Len() > 0 {
			t.Errorf("soak %v printed %q: something started", args, stdout.String())
		}
	}
}
