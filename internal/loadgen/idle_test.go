package loadgen

import (
	"os"
	"strconv"
	"testing"

	"github.com/supersocket-go/supersocket/internal/cli"
)

func TestBenchIdle(t *testing.T) {
	addr := startApp(t, "echo")
	code, out, errs := runBench(t, "-addr", addr, "-idle", "50", "-idle-settle", "0s", "-server-pid", strconv.Itoa(os.Getpid()), "-json")
	if code != cli.ExitOK {
		t.Fatalf("exit status %d; stderr:\n%s", code, errs)
	}
	r := decodeResult(t, out)
	if r.Mode != "idle" || r.Conns != 50 || r.OpenConns != 50 || r.Errors != 0 {
		t.Errorf("idle result %+v", r)
	}
	if r.RSSPerConn == nil || r.RSSBefore <= 0 || r.RSSAfter <= 0 {
		t.Errorf("server memory not measured: %+v", r)
	}
}
