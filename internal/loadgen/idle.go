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

	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/internal/proc"
)

// idleResult is what an idle run measured.
type idleResult struct {
	open                  int // connections open and past their exchange
	errs                  errorTally
	rssBefore, rssAfter   int64 // the server's, in bytes; 0 when not measured
	selfBefore, selfAfter int64 // this process's
	serverErr             error
}

// runIdle opens o.idle connections, makes one exchange on each, lets them sit idle, and
// measures the server's resident memory before and after.
func runIdle(ctx context.Context, o *options, cd *codec, stderr io.Writer) (*idleResult, error) {
	n := o.idle
	if err := checkFileLimit(n + 64); err != nil {
		return nil, err
	}
	sources, err := sourceAddrs(o.sources, o.addr, n)
	if err != nil {
		return nil, err
	}
	res := &idleResult{}
	if o.serverPID > 0 {
		res.rssBefore, res.serverErr = proc.RSS(o.serverPID)
	}
	res.selfBefore, _ = proc.RSS(os.Getpid())

	conns := make([]net.Conn, n)
	errs := make([]error, n)
	kinds := make([]string, n)
	hs := o.handshake()
	var next, opened atomic.Int64
	var wg sync.WaitGroup
	stopProgress := idleProgress(o, n, &opened, stderr)
	for range min(n, 128) {
		wg.Go(func() {
			buf := make([]byte, cd.reqLen+cd.repLen)
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				d := net.Dialer{Timeout: o.timeout}
				if len(sources) > 0 {
					d.LocalAddr = &net.TCPAddr{IP: sources[i%len(sources)]}
				}
				c, err := dial(ctx, d, o.addr, hs, o.timeout)
				if err != nil {
					errs[i], kinds[i] = err, errDial
					continue
				}
				if hs != nil {
					err = exchangeOnceWS(c, cd, uint64(i), o.timeout)
				} else {
					err = exchangeOnce(c, cd, uint64(i), buf, o.timeout)
				}
				if err != nil {
					c.Close()
					errs[i], kinds[i] = fmt.Errorf("connection %d: %w", i, err), errIdle
					continue
				}
				conns[i] = c
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	stopProgress()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i, err := range errs {
		if err != nil {
			res.errs.add(kinds[i], err)
		}
	}
	res.open = int(opened.Load())

	// Let the server finish its side of the last exchanges before reading its memory.
	select {
	case <-time.After(o.idleSettle):
	case <-ctx.Done():
	}
	if o.serverPID > 0 && res.serverErr == nil {
		res.rssAfter, res.serverErr = proc.RSS(o.serverPID)
	}
	res.selfAfter, _ = proc.RSS(os.Getpid())
	if o.idleHold > 0 {
		select {
		case <-time.After(o.idleHold):
		case <-ctx.Done():
		}
	}
	return res, nil
}

// exchangeOnce sends request 0 of connection id and checks its reply.
func exchangeOnce(c net.Conn, cd *codec, id uint64, buf []byte, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	req, rep := buf[:cd.reqLen], buf[cd.reqLen:]
	cd.putRequest(req, id, 0)
	if _, err := c.Write(req); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, rep); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("server closed the connection before replying")
		}
		return err
	}
	if !cd.replyOK(rep, id, 0) {
		return errors.New(cd.describeMismatch(rep, id, 0))
	}
	return c.SetDeadline(time.Time{})
}

// idleProgress shows how many of the n connections are open, as progressLine does.
func idleProgress(o *options, n int, opened *atomic.Int64, stderr io.Writer) (stop func()) {
	return progressLine(o, stderr, func(time.Time) string {
		return fmt.Sprintf("  %s / %s connections open", group(opened.Load()), group(int64(n)))
	})
}

// idleMain makes an idle run and prints its results; it returns the exit status.
func idleMain(ctx context.Context, o *options, cd *codec, stdout, stderr io.Writer) int {
	res, err := runIdle(ctx, o, cd, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "supersocket bench: %v\n", err)
		return cli.ExitError
	}
	out := idleJSON(o, res)
	if o.jsonOut {
		writeJSON(stdout, out)
	} else {
		printIdle(stdout, o, out, res)
	}
	if o.memprofile != "" {
		if err := writeHeapProfile(o.memprofile); err != nil {
			fmt.Fprintf(stderr, "supersocket bench: -memprofile: %v\n", err)
		}
	}
	if out.Errors > 0 || res.open == 0 {
		return cli.ExitError
	}
	return cli.ExitOK
}
