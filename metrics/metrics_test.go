package metrics_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCollectorReportsSnapshot checks every metric against a fixed snapshot.
func TestCollectorReportsSnapshot(t *testing.T) {
	st := supersocket.Stats{
		Sessions: 3, Parked: 1, Accepted: 10, Refused: 2, Requests: 42, BytesIn: 1000, BytesOut: 2000,
		SendQueueFull: 4, HandshakeFailures: 5, DatagramsDropped: 6,
		Started: time.Unix(1700000000, 500_000_000),
		Listeners: []supersocket.ListenerStats{
			{Network: "tcp", Addr: "127.0.0.1:2020", TLS: true, Accepted: 7, Sessions: 2},
			{Network: "udp", Addr: "127.0.0.1:2020", Accepted: 3, Sessions: 1},
		},
	}
	st.Closes[supersocket.CloseClientClosing] = 5
	st.Closes[supersocket.CloseProtocolError] = 2
	c := metrics.NewCollector("echo", func() supersocket.Stats { return st })
	want := `
# HELP supersocket_accepted_total Connections accepted, refused ones included (UDP: new peers).
# TYPE supersocket_accepted_total counter
supersocket_accepted_total{server="echo"} 10
# HELP supersocket_datagrams_dropped_total UDP datagrams dropped: a session's inbox was full, or no session key was found.
# TYPE supersocket_datagrams_dropped_total counter
supersocket_datagrams_dropped_total{server="echo"} 6
# HELP supersocket_listener_accepted_total Connections accepted per listener; restarts from 0 when the server starts.
# TYPE supersocket_listener_accepted_total counter
supersocket_listener_accepted_total{addr="127.0.0.1:2020",network="tcp",server="echo",tls="true"} 7
supersocket_listener_accepted_total{addr="127.0.0.1:2020",network="udp",server="echo",tls="false"} 3
# HELP supersocket_listener_sessions Live sessions per bound listener.
# TYPE supersocket_listener_sessions gauge
supersocket_listener_sessions{addr="127.0.0.1:2020",network="tcp",server="echo",tls="true"} 2
supersocket_listener_sessions{addr="127.0.0.1:2020",network="udp",server="echo",tls="false"} 1
# HELP supersocket_received_bytes_total Bytes read from sessions.
# TYPE supersocket_received_bytes_total counter
supersocket_received_bytes_total{server="echo"} 1000
# HELP supersocket_refused_total Connections refused at accept (MaxConnections, MaxConnectionsPerIP, AllowConnect).
# TYPE supersocket_refused_total counter
supersocket_refused_total{server="echo"} 2
# HELP supersocket_requests_total Requests handed to the Request handler.
# TYPE supersocket_requests_total counter
supersocket_requests_total{server="echo"} 42
# HELP supersocket_running 1 while the server is running, else 0.
# TYPE supersocket_running gauge
supersocket_running{server="echo"} 1
# HELP supersocket_send_queue_full_total Sends refused or timed out because a session's send queue was full.
# TYPE supersocket_send_queue_full_total counter
supersocket_send_queue_full_total{server="echo"} 4
# HELP supersocket_sent_bytes_total Bytes written to sessions.
# TYPE supersocket_sent_bytes_total counter
supersocket_sent_bytes_total{server="echo"} 2000
# HELP supersocket_session_closes_total Closed sessions by close reason.
# TYPE supersocket_session_closes_total counter
supersocket_session_closes_total{reason="ApplicationError",server="echo"} 0
supersocket_session_closes_total{reason="ClientClosing",server="echo"} 5
supersocket_session_closes_total{reason="InternalError",server="echo"} 0
supersocket_session_closes_total{reason="ProtocolError",server="echo"} 2
supersocket_session_closes_total{reason="ServerClosing",server="echo"} 0
supersocket_session_closes_total{reason="ServerShutdown",server="echo"} 0
supersocket_session_closes_total{reason="SocketError",server="echo"} 0
supersocket_session_closes_total{reason="TimeOut",server="echo"} 0
supersocket_session_closes_total{reason="Unknown",server="echo"} 0
# HELP supersocket_sessions Live sessions.
# TYPE supersocket_sessions gauge
supersocket_sessions{server="echo"} 3
# HELP supersocket_sessions_parked Live sessions idle without a goroutine (Linux), part of supersocket_sessions.
# TYPE supersocket_sessions_parked gauge
supersocket_sessions_parked{server="echo"} 1
# HELP supersocket_start_time_seconds When the server last started, in seconds since the Unix epoch; reported only while it runs.
# TYPE supersocket_start_time_seconds gauge
supersocket_start_time_seconds{server="echo"} 1.7000000005e+09
# HELP supersocket_tls_handshake_failures_total TLS handshakes that failed or timed out; no session was created for them.
# TYPE supersocket_tls_handshake_failures_total counter
supersocket_tls_handshake_failures_total{server="echo"} 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// A scrape reads, never accumulates: the same snapshot scraped again gives the same numbers.
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatalf("second scrape: %v", err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

func TestCollectorStoppedServer(t *testing.T) {
	c := metrics.NewCollector("idle", func() supersocket.Stats { return supersocket.Stats{} })
	if n := testutil.CollectAndCount(c, "supersocket_start_time_seconds"); n != 0 {
		t.Fatalf("start_time_seconds reported for a stopped server (%d series)", n)
	}
	if n := testutil.CollectAndCount(c, "supersocket_listener_sessions"); n != 0 {
		t.Fatalf("listener series for a stopped server: %d", n)
	}
	want := "# HELP supersocket_running 1 while the server is running, else 0.\n# TYPE supersocket_running gauge\nsupersocket_running{server=\"idle\"} 0\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "supersocket_running"); err != nil {
		t.Fatal(err)
	}
}

// TestSeveralServersOneRegistry: collectors of differently named servers share a
// registry; a second collector with a name already registered is refused.
func TestSeveralServersOneRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	zero := func() supersocket.Stats { return supersocket.Stats{} }
	hist := metrics.NewRequestHistogram()
	if err := reg.Register(hist); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if err := reg.Register(metrics.NewCollector(name, zero)); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		hist.Observer(name)("KEY", time.Millisecond)
	}
	if err := reg.Register(metrics.NewCollector("a", zero)); err == nil {
		t.Fatal("a second collector named a was registered")
	}
	n, err := testutil.GatherAndCount(reg, "supersocket_requests_total", "supersocket_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("got %d series, want requests_total and the histogram for each of 2 servers", n)
	}
}

func TestRequestHistogram(t *testing.T) {
	h := metrics.NewRequestHistogram(0.001, 0.01)
	obs := h.Observer("chat")
	obs("LOGIN", 500*time.Microsecond)
	obs("SAY", 5*time.Millisecond)
	obs("attacker-chosen-key-"+strings.Repeat("x", 100), 50*time.Millisecond)
	want := `
# HELP supersocket_request_duration_seconds How long Request handlers took, panicking ones included.
# TYPE supersocket_request_duration_seconds histogram
supersocket_request_duration_seconds_bucket{server="chat",le="0.001"} 1
supersocket_request_duration_seconds_bucket{server="chat",le="0.01"} 2
supersocket_request_duration_seconds_bucket{server="chat",le="+Inf"} 3
supersocket_request_duration_seconds_sum{server="chat"} 0.0555
supersocket_request_duration_seconds_count{server="chat"} 3
`
	if err := testutil.CollectAndCompare(h, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if got := len(metrics.DefaultLatencyBuckets); got != 10 || metrics.DefaultLatencyBuckets[0] != 10e-6 {
		t.Fatalf("default buckets %v", metrics.DefaultLatencyBuckets)
	}
}

// TestLiveServer feeds the collector and the histogram from a real server on a loopback
// socket: the counters follow the traffic.
func TestLiveServer(t *testing.T) {
	hist := metrics.NewRequestHistogram()
	closed := make(chan struct{}, 1)
	srv, err := supersocket.New(supersocket.Config{
		Name:           "lines",
		Listeners:      []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Filter:         filter.Terminator([]byte("\n")),
		ObserveRequest: hist.Observer("lines"),
		Logger:         discardLogger(),
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
			s.Send(req.Frame)
		},
		// Closed runs after the session's last request, write and count.
		Closed: func(*supersocket.Session[struct{}], supersocket.CloseReason) { closed <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(hist, metrics.NewCollector("lines", srv.Stats))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	c, err := net.DialTimeout("tcp", srv.Addrs()[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"one\n", "two\n", "three\n"} {
		io.WriteString(c, line)
		if got, err := r.ReadString('\n'); err != nil || got != line {
			t.Fatalf("echo %q: got %q, %v", line, got, err)
		}
	}
	// Bytes out are counted after the write and the histogram after the handler, both
	// possibly after the client read its reply: close, and wait for the Closed event.
	c.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("session not closed within 10s")
	}

	want := map[string]float64{
		"supersocket_requests_total":       3,
		"supersocket_received_bytes_total": 14,
		"supersocket_sent_bytes_total":     14,
		"supersocket_accepted_total":       1,
		"supersocket_sessions":             0,
		"supersocket_running":              1,
	}
	for name, v := range want {
		if got := gathered(t, reg, name, nil); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if got := gathered(t, reg, "supersocket_session_closes_total", map[string]string{"reason": "ClientClosing"}); got != 1 {
		t.Errorf("closes{reason=ClientClosing} = %v, want 1", got)
	}
	if got := gathered(t, reg, "supersocket_request_duration_seconds", nil); got != 3 {
		t.Errorf("histogram count = %v, want 3", got)
	}
}

// gathered returns the value (a histogram's sample count) of the one series of name
// whose labels include labels.
func gathered(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
