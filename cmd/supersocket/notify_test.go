//go:build unix

package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/internal/cli"
)

// TestReportReady: once serving, a process started by a hand-over writes its pid to the
// readiness pipe and tells systemd READY=1 with MAINPID= (it becomes the service's main
// process); one started otherwise tells systemd READY=1 alone.
func TestReportReady(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	recvMsg := func() string {
		t.Helper()
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 256)
		n, err := pc.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:n])
	}

	reportReady(log)
	if got := recvMsg(); got != "READY=1" {
		t.Errorf("without a hand-over: %q", got)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A duplicate, which reportReady closes, as a new process closes its descriptor.
	fd, err := syscall.Dup(int(w.Fd()))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envReadyFD, strconv.Itoa(fd))
	reportReady(log)
	pid := strconv.Itoa(os.Getpid())
	if got, want := recvMsg(), "MAINPID="+pid+"\nREADY=1"; got != want {
		t.Errorf("after a hand-over: %q, want %q", got, want)
	}
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := readLine(r)
	if err != nil || line != pid {
		t.Errorf("readiness pipe: %q, %v; want %s", line, err, pid)
	}
	if _, ok := os.LookupEnv(envReadyFD); ok {
		t.Errorf("%s still set: a process started later would take it", envReadyFD)
	}
}

// TestDrainTimeoutFlag: -drain-timeout and drain_timeout refuse a negative duration.
func TestDrainTimeoutFlag(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-drain-timeout", "-1s"}, &out); code != cli.ExitUsage || !strings.Contains(out.String(), "-drain-timeout") {
		t.Errorf("-drain-timeout -1s: exit %d:\n%s", code, &out)
	}
	path := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(path, []byte("drain_timeout: -2s\nservers:\n  - app: echo\n    listeners:\n      - addr: 127.0.0.1:0\n"), 0o600)
	out.Reset()
	if code := run(context.Background(), []string{"serve", "-config", path}, &out); code != cli.ExitUsage || !strings.Contains(out.String(), "drain_timeout") {
		t.Errorf("drain_timeout: -2s: exit %d:\n%s", code, &out)
	}
}

// TestBoundTo: the metrics socket handed over is taken only for the address configured.
func TestBoundTo(t *testing.T) {
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9100}
	wild := &net.TCPAddr{IP: net.IPv6zero, Port: 9100}
	for _, c := range []struct {
		a    *net.TCPAddr
		addr string
		want bool
	}{
		{lo, "127.0.0.1:9100", true}, {lo, "127.0.0.1:0", true}, {lo, "127.0.0.1:9101", false},
		{lo, "127.0.0.2:9100", false}, {lo, ":9100", false}, {lo, "nonsense", false},
		{wild, ":9100", true}, {wild, "0.0.0.0:9100", true}, {wild, "127.0.0.1:9100", false},
	} {
		if got := boundTo(c.a, c.addr); got != c.want {
			t.Errorf("boundTo(%v, %q) = %v", c.a, c.addr, got)
		}
	}
}
