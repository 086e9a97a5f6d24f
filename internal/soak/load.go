package soak

import (
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// startLoad starts every client; they stop when ctx ends. It returns the idle
// connections, which the caller closes after the load.
func (r *runner) startLoad(ctx context.Context, wg *sync.WaitGroup) ([]net.Conn, error) {
	var idle []net.Conn
	for range r.o.idle {
		c, err := net.DialTimeout("tcp", r.lineAddr, 10*time.Second)
		if err != nil {
			for _, c := range idle {
				c.Close()
			}
			return nil, fmt.Errorf("idle session: %w", err)
		}
		idle = append(idle, c)
		r.idleReaders.Go(func() { io.Copy(io.Discard, c) }) // broadcasts; ends at Close
	}
	workers := r.o.conns*r.o.pipeline + r.o.udp
	var period time.Duration // between one worker's round trips
	if r.o.rate > 0 && workers > 0 {
		period = time.Duration(float64(time.Second) * float64(workers) / float64(r.o.rate))
	}
	for i := range r.o.conns {
		wg.Go(func() { r.pipelined(ctx, i, transport(i%3), period) })
	}
	for i := range r.o.udp {
		wg.Go(func() { r.udpClient(ctx, i, period) })
	}
	if r.o.churnRate > 0 {
		wg.Go(func() { r.churn(ctx, wg) })
	}
	wg.Go(func() { r.broadcaster(ctx) })
	wg.Go(func() { r.badInput(ctx, wg) })
	return idle, nil
}

// pace waits for the next tick, or returns false when ctx ends.
func pace(ctx context.Context, tick *time.Ticker) bool {
	if tick == nil {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-tick.C:
		return true
	}
}

func newPacer(period time.Duration) *time.Ticker {
	if period <= 0 {
		return nil
	}
	return time.NewTicker(period)
}

// transport is how a commandline client reaches the server.
type transport int

const (
	plainTCP transport = iota
	overTLS
	overWebSocket
)

func (r *runner) lineConfig(via transport) client.Config {
	cfg := client.Config{
		Addr:        r.lineAddr,
		Filter:      filter.CommandLine(),
		IsPush:      func(m client.Message) bool { return m.Key == "NEWS" },
		OnMessage:   func(client.Message) { r.pushes.Add(1) },
		DialTimeout: 10 * time.Second,
		Logger:      r.log,
	}
	switch via {
	case overTLS:
		cfg.Addr, cfg.TLS = r.tlsAddr, r.clientTLS
	case overWebSocket:
		// Text messages, a line each: the server drops the line endings of its replies
		// and the client's filter takes a message as its last line.
		cfg.Addr = "ws://" + r.wsAddr + "/ws"
		cfg.WebSocket.Text = true
	}
	return cfg
}

// lineRequest makes one random commandline request on c and checks the reply.
func lineRequest(ctx context.Context, c *client.Conn, rng *mrand.Rand) error {
	var req, want string
	switch a, b := rng.Int64N(1e6), rng.Int64N(1e6); rng.IntN(3) {
	case 0:
		w := strconv.FormatUint(rng.Uint64(), 36)
		req, want = "ECHO "+w, w
	case 1:
		req, want = fmt.Sprintf("ADD %d %d", a, b), strconv.FormatInt(a+b, 10)
	default:
		req, want = fmt.Sprintf("MULT %d %d", a, b), strconv.FormatInt(a*b, 10)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := c.Request(ctx, []byte(req+"\r\n"))
	if err != nil {
		return err
	}
	if got := strings.TrimRight(string(m.Frame), "\r\n"); got != want {
		return fmt.Errorf("%s answered %q, want %q", req, got, want)
	}
	return nil
}

// pipelined keeps one connection with -pipeline requests in flight until ctx ends,
// redialling if it is lost.
func (r *runner) pipelined(ctx context.Context, id int, via transport, period time.Duration) {
	for ctx.Err() == nil {
		c, err := client.Dial(ctx, r.lineConfig(via))
		if err != nil {
			r.errs.addWhileLoading(ctx, "pipelined dial", err)
			return
		}
		var wg sync.WaitGroup
		for k := range r.o.pipeline {
			wg.Go(func() {
				tick := newPacer(period)
				if tick != nil {
					defer tick.Stop()
				}
				rng := mrand.New(mrand.NewPCG(uint64(id), uint64(k)))
				for pace(ctx, tick) {
					if err := lineRequest(ctx, c, rng); err != nil {
						r.errs.addWhileLoading(ctx, "pipelined request", err)
						return
					}
					r.requests.Add(1)
					r.lineReqs.Add(1)
				}
			})
		}
		wg.Wait()
		c.Close()
	}
}

// churn connects, makes a few requests and disconnects (by QUIT, or by closing), at
// -churn-rate cycles per second, a third each over TCP, TLS and WebSocket.
func (r *runner) churn(ctx context.Context, wg *sync.WaitGroup) {
	tick := time.NewTicker(time.Second / time.Duration(r.o.churnRate))
	defer tick.Stop()
	var n int
	for pace(ctx, tick) {
		n++
		seq := n
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(seq), 99))
			c, err := client.Dial(ctx, r.lineConfig(transport(seq%3)))
			if err != nil {
				r.errs.addWhileLoading(ctx, "churn dial", err)
				return
			}
			defer c.Close()
			for range 1 + rng.IntN(5) {
				if err := lineRequest(ctx, c, rng); err != nil {
					r.errs.addWhileLoading(ctx, "churn request", err)
					return
				}
				r.requests.Add(1)
				r.churnReqs.Add(1)
			}
			if seq%3 == 0 {
				qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				m, err := c.Request(qctx, []byte("QUIT\r\n"))
				if err == nil && strings.TrimRight(string(m.Frame), "\r\n") != "BYE" {
					err = fmt.Errorf("QUIT answered %q", m.Frame)
				}
				if err != nil && ctx.Err() == nil {
					r.errs.add("churn quit", err)
					return
				}
			}
			r.cycles.Add(1)
		})
	}
}

// broadcaster sends a NEWS line to every commandline session every -broadcast-every.
func (r *runner) broadcaster(ctx context.Context) {
	tick := time.NewTicker(r.o.broadcastEvery)
	defer tick.Stop()
	for n := 0; pace(ctx, tick); n++ {
		r.broadcasts.Add(int64(r.broadcast(fmt.Appendf(nil, "NEWS %d\r\n", n))))
	}
}
