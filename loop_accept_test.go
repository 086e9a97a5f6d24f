//go:build linux

package supersocket

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// The epoll engine accepts inside its loops (loop_accept.go): these tests hold it to the
// accept goroutine's contract.

// openFDs counts the process's open descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// acceptGoroutines counts the goroutines in the epoll engine's accept goroutine.
func acceptGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "supersocket.(*engine[...]).acceptLoop")
}

// TestLoopAcceptBurst: a burst of connections from many clients at once on the epoll
// engine, past MaxConnections: a loop accepts them all (no accept goroutine), admit
// exactly MaxConnections, refuse the rest and close them at once, and serve the admitted
// ones; once every client has gone, no session or descriptor is left.
func TestLoopAcceptBurst(t *testing.T) {
	const max, clients = 24, 120
	fds := openFDs(t)
	var refused atomic.Int32
	srv := startServer(t, Config{
		Engine:         EngineEpoll,
		Filter:         filter.CommandLine(),
		MaxConnections: max,
		OnRefused: func(_ net.Addr, why error) {
			if errors.Is(why, ErrMaxConnections) {
				refused.Add(1)
			}
		},
	}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if n := acceptGoroutines(); n != 0 {
		t.Errorf("%d accept goroutines: a loop should accept", n)
	}
	var served, closed atomic.Int32
	conns := make([]net.Conn, clients)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		wg.Go(func() {
			<-start
			c, err := net.DialTimeout("tcp", addrOf(srv), waitLong)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			conns[i] = c
			c.SetDeadline(time.Now().Add(waitLong))
			io.WriteString(c, "ECHO burst\r\n")
			buf := make([]byte, 64)
			n, err := io.ReadAtLeast(c, buf, len("ECHO burst\r\n"))
			switch {
			case err == nil && string(buf[:n]) == "ECHO burst\r\n":
				served.Add(1)
			case err == io.EOF || isReset(err):
				closed.Add(1)
			default:
				t.Errorf("client: %q, %v", buf[:n], err)
			}
		})
	}
	close(start)
	wg.Wait()
	if served.Load() != max || closed.Load() != clients-max || refused.Load() != clients-max {
		t.Errorf("served %d, closed %d, refused %d; want %d, %d, %d", served.Load(), closed.Load(), refused.Load(), max, clients-max, clients-max)
	}
	for s := range srv.Sessions() {
		if !isLoop(s) {
			t.Error("a session of the burst is not on the epoll engine")
		}
	}
	if st := srv.Stats(); st.Accepted != clients || st.Refused != clients-max || st.Sessions != max {
		t.Errorf("Stats: Accepted %d Refused %d Sessions %d; want %d, %d, %d", st.Accepted, st.Refused, st.Sessions, clients, clients-max, max)
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	eventually(t, "every session to end", func() bool { return srv.SessionCount() == 0 })
	srv.Stop()
	eventually(t, "the descriptors to be back to their count before", func() bool { return openFDs(t) <= fds })
}

// TestLoopAcceptListenerClosed: Drain, Shutdown and Stop close the listener while its
// loop accepts under a stream of new connections: accepting stops (new dials are
// refused by the kernel), the sessions already accepted are served or closed, and no
// descriptor is left once the server has stopped (goroutines: goleak in TestMain).
func TestLoopAcceptListenerClosed(t *testing.T) {
	for _, how := range []string{"drain", "shutdown", "stop"} {
		t.Run(how, func(t *testing.T) {
			// The runtime's network poller opens its descriptors on first use: had this
			// test run first, they would count as left by the server.
			if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
				ln.Close()
			}
			fds := openFDs(t)
			srv := newServer(t, Config{Engine: EngineEpoll, Filter: filter.CommandLine()}, Handlers[struct{}]{Request: echoFrame[struct{}]})
			for round := range 3 {
				if err := srv.Start(); err != nil {
					t.Fatal(err)
				}
				addr := addrOf(srv)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var exchanges atomic.Int64
				for range 6 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							c, err := net.DialTimeout("tcp", addr, waitLong)
							if err != nil {
								time.Sleep(time.Millisecond) // refused: the listener is closed
								continue
							}
							c.SetDeadline(time.Now().Add(waitLong))
							io.WriteString(c, "ECHO x\r\n")
							var b [8]byte
							if _, err := io.ReadFull(c, b[:]); err == nil {
								exchanges.Add(1)
							}
							c.(*net.TCPConn).SetLinger(0)
							c.Close()
						}
					})
				}
				eventually(t, "a few exchanges", func() bool { return exchanges.Load() >= 50 })
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				var err error
				switch how {
				case "drain":
					err = srv.Drain(ctx)
				case "shutdown":
					err = srv.Shutdown(ctx)
				default:
					err = srv.Stop()
				}
				cancel()
				if err != nil {
					t.Fatalf("round %d: %s: %v", round, how, err)
				}
				if how == "drain" {
					// The listener is closed while the server runs on: nothing is accepted.
					if c, err := net.DialTimeout("tcp", addr, waitLong); err == nil {
						c.Close()
						t.Errorf("round %d: a dial after Drain was accepted", round)
					}
					srv.Stop()
				}
				close(stop)
				wg.Wait()
				// Stop does not wait for a session inside its handler (here an echo that
				// a loaded machine preempted): Wait does.
				ctx, cancel = context.WithTimeout(context.Background(), waitLong)
				err = srv.Wait(ctx)
				cancel()
				if err != nil {
					t.Fatalf("round %d: Wait after %s: %v", round, how, err)
				}
				if n := srv.SessionCount(); n != 0 {
					t.Errorf("round %d: %d sessions after the stop", round, n)
				}
			}
			if err := srv.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the descriptors to be back to their count before", func() bool { return openFDs(t) <= fds })
		})
	}
}

// TestLoopAcceptEMFILE: when accept4 fails for want of descriptors the loop backs off
// — the listener stays readable, and it must not spin on it — log it, and accept the
// waiting connection once descriptors are free again.
func TestLoopAcceptEMFILE(t *testing.T) {
	logger, logs := captureLogger()
	srv := startServer(t, Config{Engine: EngineEpoll, Filter: filter.CommandLine(), Logger: logger}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if got := dial(t, srv).roundTrip("ECHO x\r\n"); got != "ECHO x\r\n" {
		t.Fatalf("echo: %q", got)
	}
	// Lower the soft limit to just above what is open, and fill the rest, keeping one
	// slot: the client's socket takes it and the server's accept has none.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(maxFD(t) + 32)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	var filler []int
	defer func() {
		for _, fd := range filler {
			syscall.Close(fd)
		}
	}()
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			if err != syscall.EMFILE {
				t.Fatal(err)
			}
			break
		}
		filler = append(filler, fd)
	}
	syscall.Close(filler[len(filler)-1])
	filler = filler[:len(filler)-1]
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	port := srv.Addrs()[0].(*net.TCPAddr).Port
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.Write(fd, []byte("ECHO late\r\n")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the accept failure to be logged", func() bool { return strings.Contains(logs.String(), "accept failed; retrying") })
	// The connection waits in the backlog and the listener stays readable: a loop that
	// retried at once would burn a core.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, t0 := cpu(), time.Now()
	time.Sleep(300 * time.Millisecond)
	used, wall := cpu()-c0, time.Since(t0)
	t.Logf("CPU while accept4 fails with EMFILE: %v in %v", used, wall)
	if used > wall/3 {
		t.Errorf("the server used %v of CPU in %v while it could not accept: it spins", used, wall)
	}
	for _, fd := range filler {
		syscall.Close(fd)
	}
	filler = nil
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	// Accepted after the back-off (at most a second).
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Sec: int64(waitLong / time.Second)})
	buf := make([]byte, 64)
	n, err := syscall.Read(fd, buf)
	if err != nil || string(buf[:max(n, 0)]) != "ECHO late\r\n" {
		t.Fatalf("the connection that waited: %q, %v", buf[:max(n, 0)], err)
	}
}

// maxFD returns the highest open descriptor of the process.
func maxFD(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	hi := 0
	for _, e := range ents {
		var n int
		for _, ch := range e.Name() {
			n = 10*n + int(ch-'0')
		}
		hi = max(hi, n)
	}
	return hi
}

// TestLoopAcceptPacedKeepsGoroutine: with AcceptRate set the epoll engine accepts on a
// goroutine (waiting for a token must not hold a loop), and the pacing holds.
func TestLoopAcceptPacedKeepsGoroutine(t *testing.T) {
	srv := startServer(t, Config{Engine: EngineEpoll, Filter: filter.CommandLine(), AcceptRate: 20, AcceptBurst: 1}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	eventually(t, "an accept goroutine", func() bool { return acceptGoroutines() == 1 })
	start := time.Now()
	for range 5 {
		c := dial(t, srv)
		if got := c.roundTrip("ECHO x\r\n"); got != "ECHO x\r\n" {
			t.Fatalf("echo: %q", got)
		}
	}
	// 5 connections at 20/s with a burst of 1: at least 4 waits of 50 ms.
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("5 connections at 20/s took %v", d)
	}
}
