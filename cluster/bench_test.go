package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/cluster/natsd"
)

// The benchmarks measure the cluster against NATS itself, in the same run, with the
// same 64-byte payload. bench/cluster.sh runs them in interleaved rounds and reports
// medians and ratios; docs/cluster.md has the figures.

const benchPayload = 64

// benchSenders is the number of goroutines that call SendTo at once (environment
// SENDERS, default 64).
var benchSenders = func() int {
	if n, err := strconv.Atoi(os.Getenv("SENDERS")); err == nil && n >= 2 {
		return n
	}
	return 64
}()

// asyncWindow is the number of SendToAsync calls each sender goroutine keeps in flight
// (environment WINDOW, default 64).
var asyncWindow = func() int {
	if n, err := strconv.Atoi(os.Getenv("WINDOW")); err == nil && n >= 1 {
		return n
	}
	return 64
}()

// natsPair starts an embedded NATS server and connects two clients to it, closed when
// the benchmark ends.
func natsPair(b *testing.B) (*nats.Conn, *nats.Conn) {
	ns := startNATS(b)
	var conns [2]*nats.Conn
	for i := range conns {
		c, err := nats.Connect(ns.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		conns[i] = c
	}
	return conns[0], conns[1]
}

// BenchmarkRawNATS is the ceiling: one publisher connection, one subscriber
// connection, publish → deliver through the embedded server.
func BenchmarkRawNATS(b *testing.B) {
	pub, sub := natsPair(b)
	var got atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	s, _ := sub.Subscribe("raw", func(*nats.Msg) {
		if got.Add(1) == target {
			close(done)
		}
	})
	s.SetPendingLimits(-1, -1)
	sub.Flush()
	msg := make([]byte, benchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for range b.N {
		pub.Publish("raw", msg)
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	cpu.report(b)
}

// BenchmarkRawNATSRequest is NATS request/reply by benchSenders goroutines, each
// waiting for its reply (nc.Request): what a SendTo that waited for its own
// acknowledgement, one NATS message each way, would cost at best. For comparison.
func BenchmarkRawNATSRequest(b *testing.B) {
	req, rep := natsPair(b)
	s, _ := rep.Subscribe("req", func(m *nats.Msg) { m.Respond(nil) })
	s.SetPendingLimits(-1, -1)
	rep.Flush()
	msg := make([]byte, benchPayload)
	b.SetParallelism(max(benchSenders/2, 1))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := req.Request("req", msg, 10*time.Second); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	cpu.report(b)
}

// cpuTime measures the process's CPU time (user and system) over a benchmark: every
// goroutine counts, the embedded NATS server's and the clients' included.
type cpuTime struct{ start time.Duration }

func startCPU() cpuTime { return cpuTime{processCPU()} }

// report adds the CPU time per operation.
func (c cpuTime) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

// lineCounter reads a client's connection and counts lines until it has want.
func lineCounter(conn net.Conn, want int64, done *sync.WaitGroup) {
	defer done.Done()
	r := bufio.NewReaderSize(conn, 64<<10)
	for n := int64(0); n < want; n++ {
		if _, err := r.ReadSlice('\n'); err != nil {
			return
		}
	}
}

func benchMsg() []byte {
	m := make([]byte, benchPayload)
	for i := range m {
		m[i] = 'x'
	}
	m[len(m)-1] = '\n'
	return m
}

// sendBench is the setup of the send benchmarks: node a sends to a client of node b
// (remote) or of a itself (local).
type sendBench struct {
	a, b *Node[struct{}]
	c    *client // the receiving client, without a read deadline
}

func newSendBench(b *testing.B, remote bool) *sendBench {
	ns := startNATS(b)
	sb := &sendBench{a: newNode(b, testConfig(ns.ClientURL(), "a"))}
	sb.b = sb.a
	if remote {
		sb.b = newNode(b, testConfig(ns.ClientURL(), "b"))
	}
	sb.c = dial(b, sb.b)
	sb.c.conn.SetReadDeadline(time.Time{})
	return sb
}

// countLines starts reading n lines from the client.
func (sb *sendBench) countLines(n int) *sync.WaitGroup {
	var read sync.WaitGroup
	read.Add(1)
	go lineCounter(sb.c.conn, int64(n), &read)
	return &read
}

func where(remote bool) string {
	if remote {
		return "remote"
	}
	return "local"
}

// run calls send b.N times from benchSenders goroutines (i counts a goroutine's
// calls from 1), waits until the client has read every message, and reports msgs/s
// and the CPU time per message.
func (sb *sendBench) run(b *testing.B, send func(ctx context.Context, i int)) {
	sb.runEach(b, func(ctx context.Context, pb *testing.PB) {
		for i := 1; pb.Next(); i++ {
			send(ctx, i)
		}
	})
}

// runEach is run with each sender goroutine's loop given whole.
func (sb *sendBench) runEach(b *testing.B, sender func(ctx context.Context, pb *testing.PB)) {
	read := sb.countLines(b.N)
	b.SetParallelism(max(benchSenders/2, 1)) // GOMAXPROCS is 2 here
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sender(ctx, pb)
	})
	read.Wait()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// allocs/op rounded down to a whole number: the fraction, from every goroutine of
	// the process (the receiving node's, NATS's, the client's included).
	b.ReportMetric(float64(ms.Mallocs-mallocs)/float64(b.N), "mallocs/msg")
	cpu.report(b)
}

// BenchmarkSendTo: SendTo from node a to a session of node b (remote), or of a
// (local), by benchSenders goroutines, delivered to a TCP client that reads everything.
func BenchmarkSendTo(b *testing.B) {
	for _, remote := range []bool{true, false} {
		b.Run(where(remote), func(b *testing.B) {
			sb := newSendBench(b, remote)
			msg := benchMsg()
			var failed atomic.Int64
			sb.run(b, func(ctx context.Context, _ int) {
				for sb.a.SendTo(ctx, sb.c.id, msg) != nil { // a full queue: try again
					failed.Add(1)
					time.Sleep(50 * time.Microsecond)
				}
			})
			b.ReportMetric(float64(failed.Load()), "retries")
			if remote {
				// How many sends one NATS message carried, and one acknowledgement.
				b.ReportMetric(float64(b.N)/float64(sb.a.ClusterStats().MessagesOut), "sends/natsmsg")
				b.ReportMetric(float64(b.N)/float64(sb.b.ClusterStats().MessagesOut), "sends/ack")
			}
		})
	}
}

// BenchmarkSendToAsync: SendToAsync from node a to a session of node b by benchSenders
// goroutines, each keeping up to asyncWindow calls in flight (a slot per call, taken
// before the call and given back by its done; a goroutine that has no free slot waits
// for one), delivered to a TCP client that reads everything. A call refused with a
// full queue is made again by its goroutine (retries).
func BenchmarkSendToAsync(b *testing.B) {
	b.Run("remote", func(b *testing.B) {
		sb := newSendBench(b, true)
		msg := benchMsg()
		var failed atomic.Int64
		sb.runEach(b, func(ctx context.Context, pb *testing.PB) {
			slots := make(chan struct{}, asyncWindow)
			var owed atomic.Int64 // refused calls to make again
			done := func(err error) {
				if err != nil {
					if !errors.Is(err, supersocket.ErrSendQueueFull) {
						panic(err) // not b.Fatal: this is not the benchmark's goroutine
					}
					failed.Add(1)
					owed.Add(1)
				}
				<-slots
			}
			send := func() {
				slots <- struct{}{}
				sb.a.SendToAsync(ctx, sb.c.id, msg, done)
			}
			retry := func() {
				if owed.Load() > 0 {
					time.Sleep(50 * time.Microsecond)
					for owed.Load() > 0 {
						owed.Add(-1)
						send()
					}
				}
			}
			for pb.Next() {
				send()
				retry()
			}
			for {
				for range asyncWindow { // every verdict in
					slots <- struct{}{}
				}
				if owed.Load() == 0 {
					return
				}
				for range asyncWindow {
					<-slots
				}
				retry()
			}
		})
		b.ReportMetric(float64(failed.Load()), "retries")
		b.ReportMetric(float64(b.N)/float64(sb.a.ClusterStats().MessagesOut), "sends/natsmsg")
		b.ReportMetric(float64(b.N)/float64(sb.b.ClusterStats().MessagesOut), "sends/ack")
	})
}

// BenchmarkRoundTrip: one caller, one call at a time, so ns/op is a call's round trip
// on an otherwise idle process: a raw NATS request/reply (nc.Request, the replier
// answering at once), and a remote SendTo. A SendTo that reports its verdict needs at
// least one such round trip; with benchSenders callers, each waiting for its verdict,
// SendTo can do at most benchSenders calls per round trip, whatever it batches: the
// "ceiling msgs/s" metric (benchSenders ÷ round trip), to compare with BenchmarkRawNATS.
func BenchmarkRoundTrip(b *testing.B) {
	ceiling := func(b *testing.B) {
		b.ReportMetric(float64(benchSenders)*float64(b.N)/b.Elapsed().Seconds(), "ceiling-msgs/s")
	}
	b.Run("rawNATSRequest", func(b *testing.B) {
		req, rep := natsPair(b)
		s, _ := rep.Subscribe("req", func(m *nats.Msg) { m.Respond(nil) })
		s.SetPendingLimits(-1, -1)
		rep.Flush()
		msg := make([]byte, benchPayload)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := req.Request("req", msg, 10*time.Second); err != nil {
				b.Fatal(err)
			}
		}
		ceiling(b)
	})
	b.Run("SendTo", func(b *testing.B) {
		sb := newSendBench(b, true)
		msg := benchMsg()
		read := sb.countLines(b.N)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := sb.a.SendTo(ctx, sb.c.id, msg); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		read.Wait()
		ceiling(b)
	})
}

// BenchmarkPost: Post from node a to a session of node b by benchSenders goroutines;
// each makes every postWindow-th send a SendTo, which returns once the owner has
// handled everything the goroutine posted before (the flow control a Post caller
// needs: Post itself never waits).
func BenchmarkPost(b *testing.B) {
	const postWindow = 32
	b.Run("remote", func(b *testing.B) {
		sb := newSendBench(b, true)
		msg := benchMsg()
		sb.run(b, func(ctx context.Context, i int) {
			var err error
			if i%postWindow == 0 {
				err = sb.a.SendTo(ctx, sb.c.id, msg)
			} else {
				err = sb.a.Post(sb.c.id, msg)
			}
			if err != nil {
				panic(err) // not b.Fatal: this is not the benchmark's goroutine
			}
		})
		if lost := sb.b.ClusterStats().PostsUndelivered; lost > 0 {
			b.Fatalf("%d posts not delivered (a full queue)", lost)
		}
		b.ReportMetric(float64(b.N)/float64(sb.a.ClusterStats().MessagesOut), "sends/natsmsg")
	})
}

// BenchmarkRoomFanout: one publish to a room of 1 000 members, spread over 3 nodes or
// all on one, delivered to 1 000 TCP clients.
func BenchmarkRoomFanout(b *testing.B) {
	const members = 1000
	for _, nodes := range []int{1, 3} {
		b.Run(map[int]string{1: "1node", 3: "3nodes"}[nodes], func(b *testing.B) {
			ns := startNATS(b)
			var ns3 []*Node[struct{}]
			for i := range nodes {
				ns3 = append(ns3, newNode(b, testConfig(ns.ClientURL(), string(rune('a'+i)))))
			}
			var read sync.WaitGroup
			var clients []*client
			for i := range members {
				cl := dial(b, ns3[i%nodes])
				if got := cl.do("JOIN big"); got != "OK" {
					b.Fatal(got)
				}
				clients = append(clients, cl)
			}
			// A publisher with no member on its node would add a hop; publish from a.
			pubNode := ns3[0]
			msg := benchMsg()
			for _, cl := range clients {
				cl.conn.SetReadDeadline(time.Time{})
				read.Add(1)
				go lineCounter(cl.conn, int64(b.N), &read)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			for range b.N {
				pubNode.Publish("big", msg, "")
				if pubNode.Server.Stats().SendQueueFull > 0 {
					b.Fatal("a member's queue filled up")
				}
			}
			read.Wait()
			b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(processCPU()-cpu.start)/float64(b.N*members), "cpu-ns/delivery")
		})
	}
}

// BenchmarkSendLatency: the time from a SendTo call until the client has read the
// message, for a session of the sending node (local) and of another (remote), at half
// the peak rate of remote sends, measured first in the same run; and, at the same
// rate, raw NATS's publish → delivery (the same server, two connections).
//
// It runs fixed phases whatever b.N is (run it with -benchtime 1x, or any: it runs
// once): 1 s of remote sends by benchSenders goroutines as fast as they go (the
// peak), then latencyPhase each of local sends, remote sends and raw NATS publishes,
// paced at half the peak. Go's timers sleep about 1 ms at least here, so the pacer wakes every
// millisecond (a time.Ticker) and releases the sends due since the last tick to the
// benchSenders sender goroutines; each stamps its message just before its SendTo call.
// The client reads every line and records its age. Reported: the peak and the paced
// rates, p50 and p99 of local and remote sends and of raw NATS, the difference between
// remote and local (the latency a remote send adds), and the share of sends that started more than 2 ms after being due
// (late: the pacer's rate was not kept).
func BenchmarkSendLatency(b *testing.B) {
	ns := startNATS(b)
	// Queues that absorb the client's stalls (the machine is shared): a full queue
	// would end the run, and latency is what is measured here.
	deep := func(c *supersocket.Config) { c.SendQueueSize, c.SendQueueBytes = 1<<20, 256<<20 }
	a := newNode(b, testConfig(ns.ClientURL(), "a"), deep)
	bn := newNode(b, testConfig(ns.ClientURL(), "b"), deep)
	local, remote := dial(b, a), dial(b, bn)
	b.ResetTimer()

	peak := peakRate(b, a, remote)
	rate := peak / 2
	if rate < 1000 {
		b.Fatalf("peak rate %.0f msgs/s: too low to pace", peak)
	}
	b.Logf("peak %.0f msgs/s, paced at %.0f", peak, rate)
	loc := pacedLatency(b, rate, pacedSenders(), sendTo(a, local), readLines(local))
	rem := pacedLatency(b, rate, pacedSenders(), sendTo(a, remote), readLines(remote))
	raw := rawLatency(b, ns, rate)
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(peak, "peak-msgs/s")
	b.ReportMetric(rate, "paced-msgs/s")
	b.ReportMetric(loc.p50, "local-p50-µs")
	b.ReportMetric(loc.p99, "local-p99-µs")
	b.ReportMetric(rem.p50, "remote-p50-µs")
	b.ReportMetric(rem.p99, "remote-p99-µs")
	b.ReportMetric(rem.p50-loc.p50, "added-p50-µs")
	b.ReportMetric(rem.p99-loc.p99, "added-p99-µs")
	b.ReportMetric(100*loc.late, "local-late-%")
	b.ReportMetric(100*rem.late, "remote-late-%")
	b.ReportMetric(raw.p50, "nats-p50-µs")
	b.ReportMetric(raw.p99, "nats-p99-µs")
	b.ReportMetric(100*raw.late, "nats-late-%")
}

// rawLatency is pacedLatency for raw NATS: publish → delivery to a subscriber of
// another connection, through the same server.
func rawLatency(b *testing.B, ns *natsd.Server, rate float64) latencies {
	var conns [2]*nats.Conn
	for i := range conns {
		c, err := nats.Connect(ns.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	// An asynchronous subscription, as the nodes' are (NextMsg per message would be the
	// bottleneck).
	var got func([]byte)
	var n, total atomic.Int64
	done := make(chan struct{})
	ready := make(chan struct{})
	sub, err := conns[1].Subscribe("lat", func(m *nats.Msg) {
		<-ready
		got(m.Data)
		if n.Add(1) == total.Load() {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	sub.SetPendingLimits(-1, -1)
	conns[1].Flush()
	// One publisher: Publish does not wait, and many goroutines that never wait would
	// keep the connections' own goroutines queued behind them.
	return pacedLatency(b, rate, 1, func(msg []byte) error { return conns[0].Publish("lat", msg) },
		func(want int, observe func([]byte)) error {
			got = observe
			total.Store(int64(want))
			close(ready)
			select {
			case <-done:
				return nil
			case <-time.After(latencyPhase + 10*time.Second):
				return fmt.Errorf("%d of %d messages", n.Load(), want)
			}
		})
}

// pacedSenders is the number of goroutines that make the paced sends: more than the
// peak's, so that a send waits for a free sender only when the node falls behind.
func pacedSenders() int {
	if n, err := strconv.Atoi(os.Getenv("PACED_SENDERS")); err == nil && n > 0 {
		return n
	}
	return 4 * benchSenders
}

// latencyPhase is how long each paced phase of BenchmarkSendLatency lasts.
const latencyPhase = 2 * time.Second

// peakRate measures remote SendTo's throughput for a second.
func peakRate(b *testing.B, a *Node[struct{}], c *client) float64 {
	var sent, got atomic.Int64
	var read sync.WaitGroup
	read.Add(1)
	c.conn.SetReadDeadline(time.Time{})
	go func() { // count what arrives, until stopped by a deadline
		defer read.Done()
		for {
			if _, err := c.r.ReadSlice('\n'); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	msg := benchMsg()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for range benchSenders {
		wg.Go(func() {
			for !isClosed(stop) {
				if a.SendTo(context.Background(), c.id, msg) == nil {
					sent.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second) // the measured period, not a synchronisation
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	eventually(b, 10*time.Second, "every message read", func() bool { return got.Load() == sent.Load() })
	c.conn.SetReadDeadline(time.Now()) // stops the reader, between two lines
	read.Wait()
	c.conn.SetReadDeadline(time.Time{})
	return float64(sent.Load()) / elapsed.Seconds()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// stampLen is the length of a message's time stamp: Unix nanoseconds in 16 hex digits
// (text, so that it never holds the line's end).
const stampLen = 16

func stamp(msg []byte, t time.Time) {
	const hex = "0123456789abcdef"
	ns := uint64(t.UnixNano())
	for i := stampLen - 1; i >= 0; i-- {
		msg[i] = hex[ns&15]
		ns >>= 4
	}
}

type latencies struct {
	p50, p99 float64 // µs
	late     float64 // the share of sends that started more than 2 ms after due
}

// pacedLatency makes sends with send, from senders goroutines, at rate msgs/s for
// latencyPhase, while receive
// hands each message that arrives to got until it has total or fails; it returns the
// percentiles of the times from each send call to the message's arrival.
func pacedLatency(b *testing.B, rate float64, senders int, send func(msg []byte) error, receive func(total int, got func(msg []byte)) error) latencies {
	total := int(rate * latencyPhase.Seconds())
	lat := make([]time.Duration, 0, total)
	var read sync.WaitGroup
	read.Go(func() {
		err := receive(total, func(msg []byte) {
			sent, err := strconv.ParseInt(string(msg[:stampLen]), 16, 64)
			if err != nil {
				b.Errorf("stamp %q: %v", msg[:stampLen], err)
			}
			lat = append(lat, time.Duration(time.Now().UnixNano()-sent))
		})
		if err != nil {
			b.Errorf("receive: %v", err)
		}
	})
	due := make(chan time.Time, total)
	var late, failed atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			msg := benchMsg()
			for at := range due {
				now := time.Now()
				if now.Sub(at) > 2*time.Millisecond { // a tick's sends are due over 1 ms
					late.Add(1)
				}
				stamp(msg, now)
				if err := send(msg); err != nil && failed.Add(1) == 1 {
					b.Errorf("send: %v", err)
				}
			}
		})
	}
	tick := time.NewTicker(time.Millisecond)
	start := time.Now()
	for released := 0; released < total; {
		now := <-tick.C
		for n := min(int(rate*now.Sub(start).Seconds()), total); released < n; released++ {
			due <- start.Add(time.Duration(float64(released) / rate * float64(time.Second)))
		}
	}
	tick.Stop()
	close(due)
	wg.Wait()
	read.Wait()
	slices.Sort(lat)
	if len(lat) == 0 {
		return latencies{}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return latencies{
		p50:  us(lat[len(lat)/2]),
		p99:  us(lat[len(lat)*99/100]),
		late: float64(late.Load()) / float64(total),
	}
}

// sendTo is pacedLatency's send for SendTo from a to c's session.
func sendTo(a *Node[struct{}], c *client) func([]byte) error {
	return func(msg []byte) error { return a.SendTo(context.Background(), c.id, msg) }
}

// readLines is pacedLatency's receive for c's lines.
func readLines(c *client) func(int, func([]byte)) error {
	return func(total int, got func([]byte)) error {
		c.conn.SetReadDeadline(time.Now().Add(latencyPhase + 10*time.Second))
		for range total {
			line, err := c.r.ReadSlice('\n')
			if err != nil || len(line) < stampLen {
				return fmt.Errorf("line %q: %v", line, err)
			}
			got(line)
		}
		return nil
	}
}
