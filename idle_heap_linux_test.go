package supersocket

import (
	"net"
	"runtime"
	"syscall"
	"testing"

	"github.com/supersocket-go/supersocket/filter"
)

// rawClient is a client socket without a net.Conn: no Go heap, so that a test can
// measure the server's heap alone.
type rawClient int

func dialRaw(t testing.TB, port int) rawClient {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	return rawClient(fd)
}

// exchange writes req and reads len(req) bytes back.
func (c rawClient) exchange(t testing.TB, req []byte) {
	t.Helper()
	if _, err := syscall.Write(int(c), req); err != nil {
		t.Fatal(err)
	}
	var buf [64]byte
	for got := 0; got < len(req); {
		n, err := syscall.Read(int(c), buf[:len(req)-got])
		if err != nil || n <= 0 {
			t.Fatalf("read: %d, %v", n, err)
		}
		got += n
	}
}

// TestIdleSessionHeap reports the Go heap an idle session costs on each engine (its
// session, buffers given back, registry entry, filter; on the goroutine engine its
// net.Conn too), with clients on raw sockets so that only the server's heap counts. The
// epoll engine's must stay small: it is most of what an idle connection costs there.
func TestIdleSessionHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes the heap")
	}
	const n = 2000
	for _, engine := range engines() {
		t.Run(engine, func(t *testing.T) {
			srv := startServer(t, Config{Engine: engine, Filter: filter.Uint32BE(), MaxConnections: 2 * n},
				Handlers[struct{}]{Request: echoFrame[struct{}]})
			port := srv.Addrs()[0].(*net.TCPAddr).Port
			req := []byte{0, 0, 0, 4, 'p', 'i', 'n', 'g'}
			warm := dialRaw(t, port)
			warm.exchange(t, req)
			waitIdle(t, srv, 1)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			clients := make([]rawClient, n)
			for i := range clients {
				clients[i] = dialRaw(t, port)
				clients[i].exchange(t, req)
			}
			waitIdle(t, srv, n+1)
			runtime.GC()
			runtime.ReadMemStats(&after)
			per := float64(after.HeapAlloc-before.HeapAlloc) / n
			t.Logf("%s: %.0f bytes of heap per idle session (%d sessions)", engine, per, n)
			for _, c := range append(clients, warm) {
				syscall.Close(int(c))
			}
			if engine == EngineEpoll && per > 600 {
				t.Errorf("an idle session of the epoll engine holds %.0f bytes of heap, want at most 600", per)
			}
		})
	}
}
