package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The benchmarks measure the cluster against NATS itself, in the same run, with the
// same 64-byte payload (see docs/cluster.md for the table and the command).

const benchPayload = 64

// BenchmarkRawNATS is the ceiling: one publisher connection, one subscriber
// connection, publish → deliver through the embedded server.
func BenchmarkRawNATS(b *testing.B) {
	ns := startNATS(b)
	pub, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
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
	for range b.N {
		pub.Publish("raw", msg)
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
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

// BenchmarkSendTo: SendTo from node a to a session of node b (remote), or of a
// (local), by 64 goroutines, delivered to a TCP client that reads everything.
func BenchmarkSendTo(b *testing.B) {
	for _, remote := range []bool{true, false} {
		name := "local"
		if remote {
			name = "remote"
		}
		b.Run(name, func(b *testing.B) {
			ns := startNATS(b)
			a := newNode(b, testConfig(ns.ClientURL(), "a"))
			target := a
			if remote {
				target = newNode(b, testConfig(ns.ClientURL(), "b"))
			}
			c := dial(b, target)
			c.conn.SetReadDeadline(time.Time{})
			var read sync.WaitGroup
			read.Add(1)
			go lineCounter(c.conn, int64(b.N), &read)
			msg := benchMsg()
			ctx := context.Background()
			var failed atomic.Int64
			b.SetParallelism(32) // 64 senders on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				for pb.Next() {
					for a.SendTo(ctx, c.id, msg) != nil { // a full queue: try again
						failed.Add(1)
						time.Sleep(50 * time.Microsecond)
					}
				}
			})
			read.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(failed.Load()), "retries")
		})
	}
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
			for range b.N {
				pubNode.Publish("big", msg, "")
				if pubNode.Server.Stats().SendQueueFull > 0 {
					b.Fatal("a member's queue filled up")
				}
			}
			read.Wait()
			b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkSendLatency: the time from SendTo to the client reading the message, for a
// remote and a local session, at a paced rate of msgs/s (RATE below); p50 and p99.
func BenchmarkSendLatency(b *testing.B) {
	for _, remote := range []bool{true, false} {
		name := "local"
		if remote {
			name = "remote"
		}
		b.Run(name, func(b *testing.B) {
			ns := startNATS(b)
			a := newNode(b, testConfig(ns.ClientURL(), "a"))
			target := a
			if remote {
				target = newNode(b, testConfig(ns.ClientURL(), "b"))
			}
			c := dial(b, target)
			c.conn.SetReadDeadline(time.Time{})
			lat := make([]time.Duration, 0, b.N)
			var read sync.WaitGroup
			read.Add(1)
			go func() {
				defer read.Done()
				for range b.N {
					line, err := c.r.ReadSlice('\n')
					if err != nil || len(line) < 8 {
						return
					}
					sent := int64(binary.LittleEndian.Uint64(line))
					lat = append(lat, time.Duration(time.Now().UnixNano()-sent))
				}
			}()
			interval := time.Second / time.Duration(latencyRate)
			var wg sync.WaitGroup
			b.ResetTimer()
			next := time.Now()
			for range b.N {
				next = next.Add(interval)
				for time.Now().Before(next) {
				}
				msg := make([]byte, benchPayload)
				for i := 8; i < len(msg); i++ {
					msg[i] = 'x'
				}
				msg[len(msg)-1] = '\n'
				binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
				// '\n' must not appear inside the timestamp: nudge it if it does.
				for slices.Contains(msg[:8], '\n') {
					binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
				}
				wg.Go(func() { a.SendTo(context.Background(), c.id, msg) })
			}
			wg.Wait()
			read.Wait()
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// latencyRate is the paced rate of BenchmarkSendLatency, msgs/s: about half the
// remote SendTo peak measured here under the race of four busy components (see
// docs/cluster.md: at 20 000/s the remote queue built up).
var latencyRate = 5000
