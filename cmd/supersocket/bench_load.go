package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadRun is what the connections of one load run share.
type loadRun struct {
	base      time.Time
	recording atomic.Bool // replies are counted and timed
	stopping  atomic.Bool // no new requests; drain the ones in flight
}

// now is the time since the run's base, in nanoseconds, on the monotonic clock.
func (r *loadRun) now() int64 { return int64(time.Since(r.base)) }

// Kinds of error, as the report counts them.
const (
	errDial     = "dial"     // a connection could not be opened
	errMismatch = "mismatch" // a reply differed from the request's echo (corrupt, reordered, lost framing)
	errIO       = "io"       // the connection failed or the server closed it with requests in flight
	errTimeout  = "timeout"  // replies still missing when the run's deadline passed
)

// loadConn is one connection of a load run, driven by one goroutine: it keeps up to
// depth requests in flight, writing the missing ones in one batch, and checks every reply
// against the request it answers, in order.
type loadConn struct {
	id    uint64
	conn  net.Conn
	cd    *codec
	depth int
	rbuf  []byte
	wbuf  []byte
	times []int64 // send time of each request in flight, by seq % depth
	hist  *histogram

	sent, recv uint64 // requests written, replies checked

	counted atomic.Int64 // replies checked while recording; the progress line reads it
	errKind string
	err     error
}

func newLoadConn(id uint64, c net.Conn, cd *codec, depth int) *loadConn {
	return &loadConn{
		id:    id,
		conn:  c,
		cd:    cd,
		depth: depth,
		rbuf:  make([]byte, max(4096, depth*cd.repLen)),
		wbuf:  make([]byte, depth*cd.reqLen),
		times: make([]int64, depth),
		hist:  newHistogram(),
	}
}

func (lc *loadConn) fail(kind string, err error) {
	lc.errKind, lc.err = kind, fmt.Errorf("connection %d: %w", lc.id, err)
}

// run drives the connection until the run stops and every request in flight has been
// answered, or until an error. It closes the connection.
func (lc *loadConn) run(r *loadRun) {
	defer lc.conn.Close()
	cd, depth := lc.cd, uint64(lc.depth)
	start, end := 0, 0 // unconsumed reply bytes are rbuf[start:end]
	for {
		if !r.stopping.Load() {
			if k := int(depth - (lc.sent - lc.recv)); k > 0 {
				for i := range k {
					cd.putRequest(lc.wbuf[i*cd.reqLen:], lc.id, lc.sent+uint64(i))
				}
				now := r.now()
				for i := range uint64(k) {
					lc.times[(lc.sent+i)%depth] = now
				}
				if _, err := lc.conn.Write(lc.wbuf[:k*cd.reqLen]); err != nil {
					lc.ioFailed(err)
					return
				}
				lc.sent += uint64(k)
			}
		}
		if lc.sent == lc.recv {
			return // stopping, and nothing is in flight
		}
		if end == len(lc.rbuf) {
			end = copy(lc.rbuf, lc.rbuf[start:end])
			start = 0
		}
		n, err := lc.conn.Read(lc.rbuf[end:])
		if n > 0 {
			end += n
			now := r.now()
			rec := r.recording.Load()
			var counted int64
			for end-start >= cd.repLen && lc.recv < lc.sent {
				b := lc.rbuf[start : start+cd.repLen]
				if !cd.replyOK(b, lc.id, lc.recv) {
					lc.fail(errMismatch, errors.New(cd.describeMismatch(b, lc.id, lc.recv)))
					return
				}
				if rec {
					lc.hist.record(now - lc.times[lc.recv%depth])
					counted++
				}
				lc.recv++
				start += cd.repLen
			}
			if counted > 0 {
				lc.counted.Add(counted)
			}
			if start == end {
				start, end = 0, 0
			} else if lc.recv == lc.sent {
				lc.fail(errMismatch, fmt.Errorf("%d bytes received beyond the %d replies awaited", end-start, lc.sent))
				return
			}
		}
		if err != nil {
			lc.ioFailed(err)
			return
		}
	}
}

func (lc *loadConn) ioFailed(err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		lc.fail(errTimeout, fmt.Errorf("%d replies missing at the deadline", lc.sent-lc.recv))
	case errors.Is(err, io.EOF):
		lc.fail(errIO, fmt.Errorf("server closed the connection with %d replies missing", lc.sent-lc.recv))
	default:
		lc.fail(errIO, err)
	}
}

// errorTally counts errors by kind and keeps the first message of each kind.
type errorTally struct {
	kinds map[string]int64
	first map[string]string
}

func (t *errorTally) add(kind string, err error) {
	if t.kinds == nil {
		t.kinds, t.first = map[string]int64{}, map[string]string{}
	}
	t.kinds[kind]++
	if _, ok := t.first[kind]; !ok {
		t.first[kind] = err.Error()
	}
}

func (t *errorTally) total() (n int64) {
	for _, c := range t.kinds {
		n += c
	}
	return n
}

// summary is one example message per kind, in a stable order.
func (t *errorTally) summary() string {
	var parts []string
	for _, k := range []string{errDial, errMismatch, errIO, errTimeout, errIdle} {
		if m, ok := t.first[k]; ok {
			parts = append(parts, k+": "+m)
		}
	}
	return strings.Join(parts, "; ")
}

// dialAll opens n connections to addr, at most 128 at a time. Connection i binds source
// address sources[i % len(sources)] when sources is not empty. It returns the open
// connections (nil where a dial failed) and the errors.
func dialAll(ctx context.Context, addr string, n int, sources []net.IP, timeout time.Duration) ([]net.Conn, []error) {
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, 128) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				d := net.Dialer{Timeout: timeout}
				if len(sources) > 0 {
					d.LocalAddr = &net.TCPAddr{IP: sources[i%len(sources)]}
				}
				conns[i], errs[i] = d.DialContext(ctx, "tcp", addr)
			}
		})
	}
	wg.Wait()
	return conns, errs
}

// loopbackSourcesPerAddr is how many connections one source address gets before the next
// is used: below the 28 232 ports of Linux's default ephemeral range.
const loopbackSourcesPerAddr = 20000

// sourceAddrs parses -source-addrs: "auto" picks 127.0.0.1, 127.0.0.2, … when n
// connections to an IPv4 loopback target need more ephemeral ports than one source
// address has, and nothing otherwise; any other value is a comma-separated list.
func sourceAddrs(spec, target string, n int) ([]net.IP, error) {
	if spec == "" || spec == "auto" {
		host, _, err := net.SplitHostPort(target)
		if err != nil {
			return nil, fmt.Errorf("-addr: %w", err)
		}
		ip := net.ParseIP(host)
		if n <= loopbackSourcesPerAddr || ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			return nil, nil
		}
		k := (n + loopbackSourcesPerAddr - 1) / loopbackSourcesPerAddr
		if k > 254 {
			return nil, fmt.Errorf("-conns %d needs more than 254 loopback source addresses", n)
		}
		var ips []net.IP
		for i := range k {
			ips = append(ips, net.IPv4(127, 0, 0, byte(1+i)))
		}
		return ips, nil
	}
	var ips []net.IP
	for s := range strings.SplitSeq(spec, ",") {
		s = strings.TrimSpace(s)
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("-source-addrs: %q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// checkFileLimit raises the soft limit on open files and fails when need descriptors
// cannot fit under it.
func checkFileLimit(need int) error {
	limit, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("cannot raise the open-file limit: %w", err)
	}
	if uint64(need) > limit {
		return fmt.Errorf("%d connections need about %d open files, but the limit is %d (raise the hard limit: ulimit -Hn, as root); the server needs as many", need-64, need, limit)
	}
	return nil
}

// loadResult is what a load run measured, before formatting.
type loadResult struct {
	elapsed   time.Duration // from the start of recording to the end of the drain
	msgs      int64
	hist      *histogram
	errs      errorTally
	serverCPU time.Duration // -1 when not measured
	clientCPU time.Duration
	serverErr error   // why the server's CPU time could not be read
	serverIO  *procIO // the server's read and write system calls over the run, when readable
}

// runLoad runs the load described by o and measures it.
func runLoad(ctx context.Context, o *benchOptions, cd *codec, stderr io.Writer) (*loadResult, error) {
	if err := checkFileLimit(o.conns + 64); err != nil {
		return nil, err
	}
	sources, err := sourceAddrs(o.sources, o.addr, o.conns)
	if err != nil {
		return nil, err
	}
	res := &loadResult{hist: newHistogram(), serverCPU: -1}
	conns, dialErrs := dialAll(ctx, o.addr, o.conns, sources, o.timeout)
	var lcs []*loadConn
	for i, c := range conns {
		if dialErrs[i] != nil {
			res.errs.add(errDial, dialErrs[i])
			continue
		}
		lcs = append(lcs, newLoadConn(uint64(i), c, cd, o.pipeline))
	}
	if len(lcs) == 0 {
		return nil, fmt.Errorf("no connection could be opened: %s", res.errs.summary())
	}

	r := &loadRun{base: time.Now()}
	if o.warmup <= 0 {
		r.recording.Store(true)
	}
	deadline := r.base.Add(o.warmup + o.duration + o.timeout)
	var wg sync.WaitGroup
	for _, lc := range lcs {
		if err := lc.conn.SetDeadline(deadline); err != nil {
			lc.fail(errIO, err)
			lc.conn.Close()
			continue
		}
		wg.Go(func() { lc.run(r) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// The measured interval starts after the warm-up.
	var cpu0, self0 time.Duration
	var io0 procIO
	var ioErr error
	var recStart time.Time
	startRecording := func() {
		if o.serverPID > 0 {
			cpu0, res.serverErr = procCPU(o.serverPID)
			io0, ioErr = readProcIO(o.serverPID)
		}
		self0 = selfCPU()
		recStart = time.Now()
		r.recording.Store(true)
	}
	stopProgress := startProgress(o, lcs, r, stderr)
	if o.warmup > 0 {
		select {
		case <-time.After(o.warmup):
		case <-ctx.Done():
		case <-done:
		}
	}
	startRecording()
	select {
	case <-time.After(o.duration):
	case <-ctx.Done():
	case <-done:
	}
	r.stopping.Store(true)
	<-done
	res.elapsed = time.Since(recStart)
	res.clientCPU = selfCPU() - self0
	if o.serverPID > 0 && res.serverErr == nil {
		var cpu1 time.Duration
		if cpu1, res.serverErr = procCPU(o.serverPID); res.serverErr == nil {
			res.serverCPU = cpu1 - cpu0
		}
		if io1, err := readProcIO(o.serverPID); err == nil && ioErr == nil {
			res.serverIO = &procIO{reads: io1.reads - io0.reads, writes: io1.writes - io0.writes}
		}
	}
	stopProgress()

	for _, lc := range lcs {
		res.msgs += lc.counted.Load()
		res.hist.merge(lc.hist)
		if lc.err != nil {
			res.errs.add(lc.errKind, lc.err)
		}
	}
	return res, nil
}

// startProgress prints a live progress line to stderr, when it is a terminal or
// -progress is set, until the returned function is called.
func startProgress(o *benchOptions, lcs []*loadConn, r *loadRun, stderr io.Writer) (stop func()) {
	var last int64
	lastAt := time.Now()
	return progressLine(o, stderr, func(now time.Time) string {
		var total int64
		for _, lc := range lcs {
			total += lc.counted.Load()
		}
		rate := float64(total-last) / now.Sub(lastAt).Seconds()
		last, lastAt = total, now
		state := "measuring"
		if !r.recording.Load() {
			state = "warming up"
		} else if r.stopping.Load() {
			state = "draining"
		}
		return fmt.Sprintf("%6.1fs  %-10s %14s msgs  %12s msgs/s", time.Since(r.base).Seconds(), state, group(total), group(int64(rate)))
	})
}

// progressLine rewrites one line of stderr every half second with line's text, when
// stderr is a terminal or -progress is set, until the returned function is called; it
// then clears the line.
func progressLine(o *benchOptions, stderr io.Writer, line func(now time.Time) string) (stop func()) {
	if !o.progress && !isTerminal(stderr) {
		return func() {}
	}
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprint(stderr, "\r\033[K")
				return
			case now := <-t.C:
				fmt.Fprint(stderr, "\r\033[K"+line(now))
			}
		}
	}()
	return func() { close(quit); <-exited }
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// group formats n with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
