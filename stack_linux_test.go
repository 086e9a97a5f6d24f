package supersocket

import (
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// TestOwnerStackFitsIn4KiB: a session's owner goroutine serves a request — read, filter,
// handler, Send, the direct write — within the goroutine's first 4 KiB of stack, over
// WebSocket as over TCP. Every connection in flight waits parkAfter on its owner before it
// parks, so an owner that outgrows 4 KiB doubles the stack of each of them: that was most
// of the WebSocket idle-memory gap to raw TCP (1.4x its RSS per connection at 10 000
// connections; docs/performance.md). Frames added under the handler on either path fail
// this test.
//
// The check is the runtime's own: a child process caps every goroutine's stack at 4 KiB
// (debug.SetMaxStack) and serves echo exchanges over both transports; an owner that needs
// more stack kills the child with "goroutine stack exceeds 4096-byte limit" and the trace
// of its deepest call, which this test reports.
func TestOwnerStackFitsIn4KiB(t *testing.T) {
	if raceEnabled {
		// The race detector's instrumentation grows every frame; the suite also runs
		// without it (.ci/run's Allocs pass runs this test).
		t.Skip("stack sizes are measured without -race")
	}
	if os.Getenv("SUPERSOCKET_STACK_CHILD") == "1" {
		ownerStackChild(t)
		return
	}
	// The allocator's slow path (a span refilled for the cache) is deeper than any
	// owner's own code and may run under any allocation, on either transport: a child
	// that crossed the cap there is run again, a bounded number of times.
	for attempt := 1; ; attempt++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOwnerStackFitsIn4KiB$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "SUPERSOCKET_STACK_CHILD=1")
		out, err := cmd.CombinedOutput()
		text := string(out)
		if err == nil {
			if !strings.Contains(text, "exchanges done") {
				t.Fatalf("the child did not run its exchanges:\n%s", text)
			}
			return
		}
		i := strings.Index(text, "goroutine stack exceeds")
		if i < 0 {
			t.Fatalf("the child failed (%v):\n%s", err, text)
		}
		trace := text[i:min(len(text), i+5000)]
		if !strings.Contains(trace, "runtime.(*mcache).refill") || attempt == 5 {
			t.Fatalf("an owner outgrew 4 KiB of stack (attempt %d):\n%s", attempt, trace)
		}
		t.Logf("attempt %d crossed the cap in the allocator's slow path; again", attempt)
	}
}

// ownerStackChild is TestOwnerStackFitsIn4KiB's child process.
func ownerStackChild(t *testing.T) {
	srv := startServer(t, Config{
		Listeners: []ListenerConfig{{Network: "tcp", Addr: "127.0.0.1:0"}, {Network: "ws", Addr: "127.0.0.1:0"}},
		Filter:    filter.Uint32BE(),
	}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	tcpAddr, wsAddr := srv.Addrs()[0].String(), srv.Addrs()[1].String()
	req := make([]byte, 64)
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	exchange := func() {
		c := dialConn(t, tcpAddr)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, len(req))); err != nil {
			t.Fatal(err)
		}
		c.Close()
		ws, _ := dialWSRaw(t, wsAddr, upgradeRequest("/ws"))
		ws.binary(req)
		ws.expect(websocket.OpBinary, string(req))
		ws.Close()
	}
	// Warm up the buffer pools, and keep them: a pool emptied by a collection would send
	// the direct write's pool.Get into the allocator's slow path, deeper than any owner's
	// own code, on either transport.
	for range 8 {
		exchange()
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	// This goroutine (the client side) and the server's running goroutines have stacks
	// sized already; the cap applies to what grows from now on: each connection's fresh
	// goroutines.
	growStack(64)
	defer debug.SetMaxStack(debug.SetMaxStack(4096))
	for range 20 {
		exchange()
	}
	t.Log("exchanges done")
}

// growStack grows the calling goroutine's stack by at least n KiB.
func growStack(n int) byte {
	var b [1024]byte
	if n > 1 {
		b[n%len(b)] = growStack(n - 1)
	}
	return b[n%len(b)]
}
