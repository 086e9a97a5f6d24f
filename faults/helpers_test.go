package faults

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/internal/testcert"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

// waitLong bounds every wait for something that must happen: long, so that a loaded
// machine never fails a correct server; finite, so that a broken one fails instead of
// hanging.
const waitLong = 10 * time.Second

// scale is SUPERSOCKET_FAULTS_SCALE (default 1): client counts and data sizes are
// multiplied by it for a longer run.
func scale() int {
	if n, err := strconv.Atoi(os.Getenv("SUPERSOCKET_FAULTS_SCALE")); err == nil && n > 0 {
		return n
	}
	return 1
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type session = supersocket.Session[struct{}]

// startServer starts a server on 127.0.0.1 (unless cfg names listeners) with a quiet
// logger (unless cfg has one), stopped when the test ends.
func startServer[T any](t testing.TB, cfg supersocket.Config, h supersocket.Handlers[T]) *supersocket.Server[T] {
	t.Helper()
	if len(cfg.Listeners) == 0 {
		cfg.Listeners = []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}}
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv, err := supersocket.New(cfg, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

func addrOf[T any](srv *supersocket.Server[T]) string { return srv.Addrs()[0].String() }

// lineHandler is the command-line app most tests serve:
//
//	ECHO x   → x
//	PANIC    → the handler panics
//	BIG n    → n pseudo-random bytes (then nothing)
func lineHandler(s *session, req supersocket.Request) {
	switch req.Key {
	case "ECHO":
		s.Send(req.Body, crlf)
	case "PANIC":
		panic("a handler bug")
	case "BIG":
		n, _ := strconv.Atoi(string(req.Body))
		s.Send(randomBytes(n, 7))
	default:
		s.Send([]byte("ERR unknown\r\n"))
	}
}

var crlf = []byte("\r\n")

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint64(seed)*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// closeTally counts Closed events by reason, and wakes waiters.
type closeTally struct {
	mu      sync.Mutex
	changed *sync.Cond
	reasons map[supersocket.CloseReason]int
	total   int
}

func newCloseTally() *closeTally {
	c := &closeTally{reasons: map[supersocket.CloseReason]int{}}
	c.changed = sync.NewCond(&c.mu)
	return c
}

// closed is a Closed handler.
func (c *closeTally) closed(_ *session, why supersocket.CloseReason) { c.record(why) }

// record counts one close.
func (c *closeTally) record(why supersocket.CloseReason) {
	c.mu.Lock()
	c.reasons[why]++
	c.total++
	c.changed.Broadcast()
	c.mu.Unlock()
}

// snapshot returns the counts by reason and their total.
func (c *closeTally) snapshot() (map[supersocket.CloseReason]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[supersocket.CloseReason]int, len(c.reasons))
	for k, v := range c.reasons {
		m[k] = v
	}
	return m, c.total
}

// waitTotal waits until at least n sessions have closed, failing the test after waitLong.
func (c *closeTally) waitTotal(t testing.TB, n int) map[supersocket.CloseReason]int {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	timer := time.AfterFunc(waitLong, func() {
		c.mu.Lock()
		c.changed.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	c.mu.Lock()
	for c.total < n && time.Now().Before(deadline) {
		c.changed.Wait()
	}
	total := c.total
	c.mu.Unlock()
	m, _ := c.snapshot()
	if total < n {
		t.Fatalf("timed out after %v: %d sessions closed, want %d (%v)", waitLong, total, n, fmtReasons(m))
	}
	return m
}

func fmtReasons(m map[supersocket.CloseReason]int) string {
	var parts []string
	for r, n := range m {
		parts = append(parts, fmt.Sprintf("%v=%d", r, n))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

// eventually polls cond until it holds, failing the test after waitLong. It is for
// counters and states that have no event to wait on.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLong, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recv waits for one value from ch, failing the test after waitLong.
func recv[V any](t testing.TB, ch <-chan V, what string) V {
	t.Helper()
	timer := time.NewTimer(waitLong)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", waitLong, what)
		panic("unreachable")
	}
}

// lineConn is a raw loopback client of the command-line app.
type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLine(addr string) (*lineConn, error) {
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		return nil, err
	}
	return &lineConn{Conn: c, r: bufio.NewReader(c)}, nil
}

// mustDial dials addr, failing the test on error; the connection is closed at the end.
func mustDial(t testing.TB, addr string) *lineConn {
	t.Helper()
	c, err := dialLine(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends line (without its ending) and returns the reply without its ending.
func (c *lineConn) roundTrip(line string) (string, error) {
	c.SetDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		return "", err
	}
	reply, err := c.r.ReadString('\n')
	if err != nil {
		return reply, err
	}
	return strings.TrimSuffix(reply, "\r\n"), nil
}

// echo checks one ECHO round trip.
func (c *lineConn) echo(word string) error {
	got, err := c.roundTrip("ECHO " + word)
	if err != nil {
		return err
	}
	if got != word {
		return fmt.Errorf("ECHO %s answered %q", word, got)
	}
	return nil
}

// readToClose reads until the server closes the connection and returns how many bytes
// came; an orderly close and a reset are both a close, a timeout is an error.
func (c *lineConn) readToClose() (int64, error) {
	c.SetReadDeadline(time.Now().Add(waitLong))
	n, err := io.Copy(io.Discard, c.r)
	if err != nil && !isReset(err) {
		return n, err
	}
	return n, nil
}

// rst closes a TCP connection with an RST instead of a FIN.
func rst(c net.Conn) error {
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		return err
	}
	return c.Close()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// countFDs counts the process's open file descriptors (the directory read itself holds
// one, in every count alike).
func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// rssKB returns the process's resident set size in KiB, or -1.
func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// heapInuse returns HeapInuse after two collections (the second empties sync.Pool's
// victim cache).
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mib(n uint64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// baseline is the process's goroutines and file descriptors before a test's server
// started, to prove that everything it and its clients opened is gone at the end.
type baseline struct {
	ignore     goleak.Option
	goroutines int
	fds        int
}

func takeBaseline(t testing.TB) baseline {
	return baseline{ignore: goleak.IgnoreCurrent(), goroutines: runtime.NumGoroutine(), fds: countFDs(t)}
}

// left checks, once the server is stopped and the clients closed, that no goroutine and
// no file descriptor outlived them, and returns how many did (0 and 0 when it passes).
func (b baseline) left(t testing.TB) (goroutines, fds int) {
	t.Helper()
	if err := goleak.Find(b.ignore); err != nil {
		t.Errorf("goroutines left behind: %v", err)
	}
	goroutines = runtime.NumGoroutine() - b.goroutines
	// A closed socket's descriptor is released by Close itself; poll only to let a
	// client's own goroutines finish closing.
	deadline := time.Now().Add(waitLong)
	for fds = countFDs(t) - b.fds; fds > 0 && time.Now().Before(deadline); fds = countFDs(t) - b.fds {
		time.Sleep(5 * time.Millisecond)
	}
	if fds > 0 {
		t.Errorf("%d file descriptors left open", fds)
	}
	return max(goroutines, 0), max(fds, 0)
}

// latencies summarises round-trip times.
type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func (l latencies) String() string {
	if len(l) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(l), l.pct(50).Round(time.Microsecond),
		l.pct(99).Round(time.Microsecond), l.pct(100).Round(time.Microsecond))
}

// probers are established clients that make ECHO round trips one after another while a
// fault happens elsewhere, recording each round trip's latency under the current phase.
// A round trip that fails or answers wrong is a lost request, and ends that prober.
type probers struct {
	phase atomic.Pointer[string]
	stop  chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	lat  map[string]latencies
	lost []error
}

// startProbers opens n clients to addr (each made by dial) and starts their round trips.
func startProbers(t testing.TB, n int, phase string, dial func() (echoer, error)) *probers {
	t.Helper()
	p := &probers{stop: make(chan struct{}), lat: map[string]latencies{}}
	p.phase.Store(&phase)
	conns := make([]echoer, n)
	for i := range conns {
		c, err := dial()
		if err != nil {
			t.Fatalf("prober dial: %v", err)
		}
		conns[i] = c
	}
	for i, c := range conns {
		p.wg.Go(func() {
			defer c.Close()
			for seq := 0; ; seq++ {
				select {
				case <-p.stop:
					return
				default:
				}
				phase := *p.phase.Load()
				start := time.Now()
				err := c.echo(fmt.Sprintf("p%d-%d", i, seq))
				el := time.Since(start)
				p.mu.Lock()
				if err != nil {
					p.lost = append(p.lost, fmt.Errorf("prober %d, round trip %d (%s): %w", i, seq, phase, err))
				} else {
					p.lat[phase] = append(p.lat[phase], el)
				}
				p.mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	t.Cleanup(p.finish)
	return p
}

// echoer is a prober's connection.
type echoer interface {
	echo(word string) error
	Close() error
}

func lineProber(addr string) func() (echoer, error) {
	return func() (echoer, error) { return dialLine(addr) }
}

func (p *probers) setPhase(name string) { p.phase.Store(&name) }

// count returns the round trips made in phase.
func (p *probers) count(phase string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lat[phase])
}

// finish stops the probers and waits for them; it may be called more than once.
func (p *probers) finish() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

// check stops the probers, fails the test for any lost request or any round trip over
// limit, and returns the latencies of each phase.
func (p *probers) check(t testing.TB, limit time.Duration) map[string]latencies {
	t.Helper()
	p.finish()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, err := range p.lost {
		t.Errorf("established client lost a request: %v", err)
	}
	for phase, l := range p.lat {
		if len(l) == 0 {
			t.Errorf("phase %s: no round trip completed", phase)
		} else if m := l.pct(100); m > limit {
			t.Errorf("phase %s: a round trip took %v (limit %v)", phase, m, limit)
		}
	}
	return p.lat
}

// lostCount returns the requests the probers lost.
func (p *probers) lostCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lost)
}

// tlsPair returns a server configuration with a fresh certificate for 127.0.0.1, and a
// client configuration that trusts it.
func tlsPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	server, client, err := testcert.Pair()
	if err != nil {
		t.Fatal(err)
	}
	client.ServerName = "127.0.0.1"
	return server, client
}

// dialTLSLine dials a TLS command-line client.
func dialTLSLine(addr string, cfg *tls.Config) (*lineConn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: waitLong}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &lineConn{Conn: c, r: bufio.NewReader(c)}, nil
}

// commandLine is the filter of the command-line app.
var commandLine = filter.CommandLine()

// readAllUntilClose reads everything c delivers until the peer closes it.
func readAllUntilClose(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(waitLong))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	if err != nil && isReset(err) {
		err = nil
	}
	return buf.Bytes(), err
}
