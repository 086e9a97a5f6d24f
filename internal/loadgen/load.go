package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/proc"
	"github.com/supersocket-go/supersocket/internal/websocket"
	"github.com/supersocket-go/supersocket/internal/wsclient"
)

// loadRun is what the connections of one load run share.
type loadRun struct {
	base      time.Time
	recording atomic.Bool // replies are counted and timed
	stopping  atomic.Bool // no new requests; drain the ones in flight
}

// now is the time since the run's base, in nanoseconds, on the monotonic clock.
func (r *loadRun) now() int64 { return int64(time.Since(r.base)) }

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
	ws    *wsclient.Reader // the replies' frames, over WebSocket (-ws); nil over TCP

	sent, recv uint64 // requests written, replies checked

	counted atomic.Int64 // replies checked while recording; the progress line reads it
	errKind string
	err     error
}

func newLoadConn(id uint64, c net.Conn, cd *codec, depth int, ws bool) *loadConn {
	lc := &loadConn{
		id:    id,
		conn:  c,
		cd:    cd,
		depth: depth,
		rbuf:  make([]byte, max(4096, depth*cd.repLen)),
		wbuf:  make([]byte, depth*cd.reqLen),
		times: make([]int64, depth),
		hist:  newHistogram(),
	}
	if ws {
		lc.ws = wsclient.NewReader(cd.repLen)
		lc.rbuf = make([]byte, max(4096, depth*(cd.repLen+websocket.MaxHeaderLen)))
		lc.wbuf = make([]byte, depth*cd.wsFrameLen())
	}
	return lc
}

// putRequests writes the next k requests into wbuf and returns them.
func (lc *loadConn) putRequests(k int) []byte {
	cd := lc.cd
	if lc.ws != nil {
		n := 0
		for i := range k {
			n += cd.putWSRequest(lc.wbuf[n:], lc.id, lc.sent+uint64(i))
		}
		return lc.wbuf[:n]
	}
	for i := range k {
		cd.putRequest(lc.wbuf[i*cd.reqLen:], lc.id, lc.sent+uint64(i))
	}
	return lc.wbuf[:k*cd.reqLen]
}

// replies checks the replies in data, the bytes received and not yet consumed, as many
// as are whole; it returns the bytes consumed and how many replies it counted while
// recording.
func (lc *loadConn) replies(data []byte, now int64, rec bool) (consumed int, counted int64, ok bool) {
	if lc.ws != nil {
		return lc.wsReplies(data, now, rec)
	}
	cd, depth := lc.cd, uint64(lc.depth)
	for len(data)-consumed >= cd.repLen && lc.recv < lc.sent {
		b := data[consumed : consumed+cd.repLen]
		if !cd.replyOK(b, lc.id, lc.recv) {
			lc.fail(errMismatch, errors.New(cd.describeMismatch(b, lc.id, lc.recv)))
			return consumed, counted, false
		}
		if rec {
			lc.hist.record(now - lc.times[lc.recv%depth])
			counted++
		}
		lc.recv++
		consumed += cd.repLen
	}
	if consumed < len(data) && lc.recv == lc.sent {
		lc.fail(errMismatch, fmt.Errorf("%d bytes received beyond the %d replies awaited", len(data)-consumed, lc.sent))
		return consumed, counted, false
	}
	return consumed, counted, true
}

func (lc *loadConn) fail(kind string, err error) {
	lc.errKind, lc.err = kind, fmt.Errorf("connection %d: %w", lc.id, err)
}

// run drives the connection until the run stops and every request in flight has been
// answered, or until an error. It closes the connection.
func (lc *loadConn) run(r *loadRun) {
	defer lc.conn.Close()
	depth := uint64(lc.depth)
	start, end := 0, 0 // unconsumed reply bytes are rbuf[start:end]
	for {
		if !r.stopping.Load() {
			if k := int(depth - (lc.sent - lc.recv)); k > 0 {
				reqs := lc.putRequests(k)
				now := r.now()
				for i := range uint64(k) {
					lc.times[(lc.sent+i)%depth] = now
				}
				if _, err := lc.conn.Write(reqs); err != nil {
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
			consumed, counted, ok := lc.replies(lc.rbuf[start:end], r.now(), r.recording.Load())
			if counted > 0 {
				lc.counted.Add(counted)
			}
			if !ok {
				return
			}
			if start += consumed; start == end {
				start, end = 0, 0
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

// loadResult is what a load run measured, before formatting.
type loadResult struct {
	elapsed   time.Duration // from the start of recording to the end of the drain
	msgs      int64
	hist      *histogram
	errs      errorTally
	serverCPU time.Duration // -1 when not measured
	clientCPU time.Duration
	serverErr error    // why the server's CPU time could not be read
	serverIO  *proc.IO // the server's read and write system calls over the run, when readable
}

// runLoad runs the load described by o and measures it.
func runLoad(ctx context.Context, o *options, cd *codec, stderr io.Writer) (*loadResult, error) {
	if err := checkFileLimit(o.conns + 64); err != nil {
		return nil, err
	}
	sources, err := sourceAddrs(o.sources, o.addr, o.conns)
	if err != nil {
		return nil, err
	}
	res := &loadResult{hist: newHistogram(), serverCPU: -1}
	conns, dialErrs := dialAll(ctx, o.addr, o.conns, sources, o.timeout, o.handshake())
	var lcs []*loadConn
	for i, c := range conns {
		if dialErrs[i] != nil {
			res.errs.add(errDial, dialErrs[i])
			continue
		}
		lcs = append(lcs, newLoadConn(uint64(i), c, cd, o.pipeline, o.wsPath != ""))
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
	var io0 proc.IO
	var ioErr error
	var recStart time.Time
	startRecording := func() {
		if o.serverPID > 0 {
			cpu0, res.serverErr = proc.CPU(o.serverPID)
			io0, ioErr = proc.ReadIO(o.serverPID)
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
		if cpu1, res.serverErr = proc.CPU(o.serverPID); res.serverErr == nil {
			res.serverCPU = cpu1 - cpu0
		}
		if io1, err := proc.ReadIO(o.serverPID); err == nil && ioErr == nil {
			res.serverIO = &proc.IO{Reads: io1.Reads - io0.Reads, Writes: io1.Writes - io0.Writes}
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
