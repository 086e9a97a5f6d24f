// Package metrics exports supersocket servers to Prometheus (github.com/prometheus/client_golang).
//
// A Collector reads a server's Stats snapshot at scrape time and reports it as constant
// metrics: nothing is counted twice, nothing runs between scrapes, and the server itself
// (package supersocket) never imports Prometheus. A RequestHistogram is fed by
// Config.ObserveRequest with how long each Request handler took.
//
//	hist := metrics.NewRequestHistogram()
//	cfg.ObserveRequest = hist.Observer("chat")
//	srv, err := supersocket.New(cfg, handlers)
//	…
//	prometheus.MustRegister(hist, metrics.NewCollector("chat", srv.Stats))
//
// Every metric carries the label server, the name given to NewCollector or Observer, so
// several servers can share one registry; give each a different name. Request keys come
// from clients and are never used as labels.
//
// The metrics, all prefixed "supersocket_":
//
//	sessions                        gauge    live sessions
//	sessions_parked                 gauge    live sessions idle without a goroutine (Linux)
//	running                         gauge    1 while the server runs, else 0
//	start_time_seconds              gauge    when the server last started (Unix time; only while running)
//	accepted_total                  counter  connections accepted, refused ones included
//	refused_total                   counter  connections refused (MaxConnections, AllowConnect, …)
//	requests_total                  counter  requests handed to the Request handler
//	received_bytes_total            counter  bytes read from sessions
//	sent_bytes_total                counter  bytes written to sessions
//	send_queue_full_total           counter  sends refused or timed out on a full send queue
//	tls_handshake_failures_total    counter  TLS handshakes that failed or timed out
//	datagrams_dropped_total         counter  UDP datagrams dropped
//	session_closes_total{reason}    counter  closed sessions by CloseReason (ClientClosing, TimeOut, …)
//	listener_sessions{network,addr,tls}        gauge    live sessions per bound listener
//	listener_accepted_total{network,addr,tls}  counter  accepted per listener (restarts at each Start)
//	request_duration_seconds        histogram  Request handler latency (RequestHistogram)
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/supersocket-go/supersocket"
)

// Namespace prefixes every metric name.
const Namespace = "supersocket"

// Collector is a prometheus.Collector for one server's Stats. Collect takes one snapshot
// per scrape; it is safe to call from any goroutine, as Stats is.
type Collector struct {
	stats func() supersocket.Stats

	sessions, parked, running, startTime               *prometheus.Desc
	accepted, refused, requests, bytesIn, bytesOut     *prometheus.Desc
	sendQueueFull, handshakeFailures, datagramsDropped *prometheus.Desc
	closes, listenerSessions, listenerAccepted         *prometheus.Desc
}

// NewCollector returns a collector of the server called name, reading its counters with
// stats (usually the server's Stats method) at each scrape.
func NewCollector(name string, stats func() supersocket.Stats) *Collector {
	server := prometheus.Labels{"server": name}
	desc := func(metric, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_"+metric, help, labels, server)
	}
	listener := []string{"network", "addr", "tls"}
	return &Collector{
		stats:             stats,
		sessions:          desc("sessions", "Live sessions."),
		parked:            desc("sessions_parked", "Live sessions idle without a goroutine (Linux), part of supersocket_sessions."),
		running:           desc("running", "1 while the server is running, else 0."),
		startTime:         desc("start_time_seconds", "When the server last started, in seconds since the Unix epoch; reported only while it runs."),
		accepted:          desc("accepted_total", "Connections accepted, refused ones included (UDP: new peers)."),
		refused:           desc("refused_total", "Connections refused at accept (MaxConnections, MaxConnectionsPerIP, AllowConnect)."),
		requests:          desc("requests_total", "Requests handed to the Request handler."),
		bytesIn:           desc("received_bytes_total", "Bytes read from sessions."),
		bytesOut:          desc("sent_bytes_total", "Bytes written to sessions."),
		sendQueueFull:     desc("send_queue_full_total", "Sends refused or timed out because a session's send queue was full."),
		handshakeFailures: desc("tls_handshake_failures_total", "TLS handshakes that failed or timed out; no session was created for them."),
		datagramsDropped:  desc("datagrams_dropped_total", "UDP datagrams dropped: a session's inbox was full, or no session key was found."),
		closes:            desc("session_closes_total", "Closed sessions by close reason.", "reason"),
		listenerSessions:  desc("listener_sessions", "Live sessions per bound listener.", listener...),
		listenerAccepted:  desc("listener_accepted_total", "Connections accepted per listener; restarts from 0 when the server starts.", listener...),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.sessions, c.parked, c.running, c.startTime, c.accepted, c.refused, c.requests, c.bytesIn, c.bytesOut,
		c.sendQueueFull, c.handshakeFailures, c.datagramsDropped, c.closes, c.listenerSessions, c.listenerAccepted,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats snapshot, reported as it is.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.sessions, float64(st.Sessions))
	gauge(c.parked, float64(st.Parked))
	if st.Started.IsZero() {
		gauge(c.running, 0)
	} else {
		gauge(c.running, 1)
		gauge(c.startTime, float64(st.Started.UnixNano())/float64(time.Second))
	}
	counter(c.accepted, st.Accepted)
	counter(c.refused, st.Refused)
	counter(c.requests, st.Requests)
	counter(c.bytesIn, st.BytesIn)
	counter(c.bytesOut, st.BytesOut)
	counter(c.sendQueueFull, st.SendQueueFull)
	counter(c.handshakeFailures, st.HandshakeFailures)
	counter(c.datagramsDropped, st.DatagramsDropped)
	for i, n := range st.Closes {
		counter(c.closes, n, supersocket.CloseReason(i).String())
	}
	for _, l := range st.Listeners {
		tls := strconv.FormatBool(l.TLS)
		gauge(c.listenerSessions, float64(l.Sessions), l.Network, l.Addr, tls)
		counter(c.listenerAccepted, l.Accepted, l.Network, l.Addr, tls)
	}
}

// DefaultLatencyBuckets are RequestHistogram's buckets, in seconds: 10µs to about 2.6s,
// each four times the last, since socket handlers usually answer in microseconds.
var DefaultLatencyBuckets = prometheus.ExponentialBuckets(10e-6, 4, 10)

// RequestHistogram is the histogram supersocket_request_duration_seconds of Request
// handler latency, labelled by server. Observer makes the Config.ObserveRequest hook of
// one server. It is a prometheus.Collector: register it once, however many servers feed it.
type RequestHistogram struct {
	vec *prometheus.HistogramVec
}

// NewRequestHistogram returns a request latency histogram with the given bucket upper
// bounds in seconds, or DefaultLatencyBuckets when none are given.
func NewRequestHistogram(buckets ...float64) *RequestHistogram {
	if len(buckets) == 0 {
		buckets = DefaultLatencyBuckets
	}
	return &RequestHistogram{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "request_duration_seconds",
		Help:      "How long Request handlers took, panicking ones included.",
		Buckets:   buckets,
	}, []string{"server"})}
}

// Observer returns the Config.ObserveRequest hook of the server called name. The request
// key is ignored: keys come from clients, and labelling by them would let a client create
// series without bound.
func (h *RequestHistogram) Observer(server string) func(key string, elapsed time.Duration) {
	obs := h.vec.WithLabelValues(server)
	return func(_ string, elapsed time.Duration) { obs.Observe(elapsed.Seconds()) }
}

// Describe implements prometheus.Collector.
func (h *RequestHistogram) Describe(ch chan<- *prometheus.Desc) { h.vec.Describe(ch) }

// Collect implements prometheus.Collector.
func (h *RequestHistogram) Collect(ch chan<- prometheus.Metric) { h.vec.Collect(ch) }
