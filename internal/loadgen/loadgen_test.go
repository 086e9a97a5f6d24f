package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
	"github.com/supersocket-go/supersocket/internal/cli"
)

// startApp serves the named app on 127.0.0.1:0 until the test ends and returns its address.
func startApp(t *testing.T, name string) string {
	t.Helper()
	return startAppOn(t, name, supersocket.ListenerConfig{Addr: "127.0.0.1:0"})
}

// startAppOn is startApp on any listener.
func startAppOn(t *testing.T, name string, lc supersocket.ListenerConfig) string {
	t.Helper()
	app, err := apps.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := app(supersocket.Config{
		Name:      name,
		Listeners: []supersocket.ListenerConfig{lc},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv.Addrs()[0].String()
}

// runBench runs the bench command in-process and returns its exit status, stdout and stderr.
func runBench(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Main(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// decodeResult parses a -json result.
func decodeResult(t *testing.T, out string) resultJSON {
	t.Helper()
	var r resultJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, out)
	}
	return r
}

func TestBenchEchoesEveryProtocol(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	cases := []struct {
		app   string
		args  []string
		proto string
	}{
		{"lineecho", []string{"-proto", "line", "-size", "1"}, "line"},
		{"commandline", []string{"-proto", "line", "-line-prefix", "ECHO ", "-size", "100"}, "line"},
		{"lenecho", []string{"-proto", "len", "-size", "4096"}, "len"},
		{"echo", []string{"-proto", "echo", "-size", "64", "-progress"}, "echo"},
	}
	for _, tc := range cases {
		t.Run(tc.app, func(t *testing.T) {
			t.Parallel()
			addr := startApp(t, tc.app)
			args := append([]string{"-addr", addr, "-conns", "3", "-pipeline", "4", "-duration", "400ms",
				"-warmup", "50ms", "-timeout", "5s", "-server-pid", pid, "-label", "test", "-json"}, tc.args...)
			code, out, errs := runBench(t, args...)
			if code != cli.ExitOK {
				t.Fatalf("exit status %d; stdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			r := decodeResult(t, out)
			if r.Mode != "load" || r.Proto != tc.proto || r.Label != "test" || r.Conns != 3 || r.Pipeline != 4 {
				t.Errorf("result describes the wrong run: %+v", r)
			}
			if r.Msgs <= 0 || r.MsgsPerSec <= 0 || r.MBPerSec <= 0 {
				t.Errorf("no messages counted: %+v", r)
			}
			if r.Errors != 0 {
				t.Errorf("errors = %d (%s), want 0", r.Errors, r.ErrorSample)
			}
			if r.LatencyUS == nil || r.LatencyUS.P50 <= 0 || r.LatencyUS.P50 > r.LatencyUS.P99 || r.LatencyUS.P99 > r.LatencyUS.P999 || r.LatencyUS.P999 > r.LatencyUS.Max {
				t.Errorf("latencies out of order: %+v", r.LatencyUS)
			}
			if r.ServerReadsPerMsg == nil || *r.ServerReadsPerMsg <= 0 || r.ServerWritesPerMsg == nil || *r.ServerWritesPerMsg <= 0 {
				t.Errorf("server system calls not counted: %+v", r)
			}
			if r.ServerCPUNsPerMsg == nil || r.ServerCPUSec == nil {
				t.Errorf("server CPU not measured: %+v (%s)", r, r.ServerCPUError)
			}
			if slices.Contains(tc.args, "-progress") && !strings.Contains(errs, "\r\033[K") {
				t.Errorf("-progress printed no progress line to stderr: %q", errs)
			}
		})
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-proto", "http"},
		{"-proto", "echo", "-size", "70000"},
		{"-proto", "len", "-line-prefix", "ECHO "},
		{"-conns", "0"},
		{"-pipeline", "0"},
		{"-size", "0"},
		{"-duration", "0s"},
		{"-server-pid", "-3"},
		{"-ws", "ws"},
		{"extra"},
	} {
		code, _, errs := runBench(t, args...)
		if code != cli.ExitUsage || !strings.Contains(errs, "supersocket bench") {
			t.Errorf("%q: exit %d, stderr %q; want %d and a message", args, code, errs, cli.ExitUsage)
		}
	}
	if code, _, errs := runBench(t, "-h"); code != cli.ExitOK || !strings.Contains(errs, "-pipeline") {
		t.Errorf("-h: exit %d, usage %q", code, errs)
	}
}
