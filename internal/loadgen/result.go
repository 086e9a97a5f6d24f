package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// resultJSON is one result, as -json prints it and -report reads it.
type resultJSON struct {
	Mode       string `json:"mode"` // "load" or "idle"
	Label      string `json:"label,omitempty"`
	Proto      string `json:"proto"`
	Transport  string `json:"transport,omitempty"` // "tcp" or "ws" (-ws); absent in results from before -ws: tcp
	LinePrefix string `json:"line_prefix,omitempty"`
	Addr       string `json:"addr"`
	Conns      int    `json:"conns"`
	Pipeline   int    `json:"pipeline,omitempty"`
	Size       int    `json:"size"`
	Time       string `json:"time"`

	// Load.
	Seconds            float64      `json:"seconds,omitempty"`
	Msgs               int64        `json:"msgs,omitempty"`
	MsgsPerSec         float64      `json:"msgs_per_sec,omitempty"`
	MBPerSec           float64      `json:"mb_per_sec,omitempty"`
	LatencyUS          *latencyJSON `json:"latency_us,omitempty"`
	ClientCPUNsPerMsg  float64      `json:"client_cpu_ns_per_msg,omitempty"`
	ClientCPUUtil      float64      `json:"client_cpu_util,omitempty"`
	ServerPID          int          `json:"server_pid,omitempty"`
	ServerCPUSec       *float64     `json:"server_cpu_sec,omitempty"`
	ServerCPUNsPerMsg  *float64     `json:"server_cpu_ns_per_msg,omitempty"`
	ServerCPUUtil      *float64     `json:"server_cpu_util,omitempty"`
	ServerCPUError     string       `json:"server_cpu_error,omitempty"`
	ServerReadsPerMsg  *float64     `json:"server_reads_per_msg,omitempty"`  // read system calls (/proc/PID/io syscr) ÷ messages
	ServerWritesPerMsg *float64     `json:"server_writes_per_msg,omitempty"` // write system calls (syscw) ÷ messages

	// Idle.
	OpenConns         int      `json:"open_conns,omitempty"`
	RSSBefore         int64    `json:"rss_before_bytes,omitempty"`
	RSSAfter          int64    `json:"rss_after_bytes,omitempty"`
	RSSPerConn        *float64 `json:"rss_per_conn_bytes,omitempty"`
	ClientRSSPerConn  float64  `json:"client_rss_per_conn_bytes,omitempty"`
	ServerMemoryError string   `json:"server_memory_error,omitempty"`

	Errors      int64            `json:"errors"`
	ErrorKinds  map[string]int64 `json:"error_kinds,omitempty"`
	ErrorSample string           `json:"error_sample,omitempty"`
}

// latencyJSON holds latencies in microseconds.
type latencyJSON struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func ptr(f float64) *float64 { return &f }

// loadJSON is the result of a load run.
func loadJSON(o *options, cd *codec, res *loadResult) *resultJSON {
	secs := res.elapsed.Seconds()
	h := res.hist
	out := &resultJSON{
		Mode: "load", Label: o.label, Proto: o.proto, Transport: o.transport(), LinePrefix: o.linePrefix, Addr: o.addr,
		Conns: o.conns, Pipeline: o.pipeline, Size: o.size, Time: time.Now().UTC().Format(time.RFC3339),
		Seconds: secs, Msgs: res.msgs,
		LatencyUS: h.latency(),
		Errors:    res.errs.total(), ErrorKinds: res.errs.kinds, ErrorSample: res.errs.summary(),
	}
	if secs > 0 {
		out.MsgsPerSec = float64(res.msgs) / secs
		out.MBPerSec = float64(res.msgs) * float64(cd.repLen) / secs / 1e6
		out.ClientCPUUtil = res.clientCPU.Seconds() / secs
	}
	if res.msgs > 0 {
		out.ClientCPUNsPerMsg = float64(res.clientCPU.Nanoseconds()) / float64(res.msgs)
	}
	if o.serverPID > 0 {
		out.ServerPID = o.serverPID
		out.setServerCPU(res.serverCPU, res.serverErr, res.msgs, secs)
		if res.serverIO != nil && res.msgs > 0 {
			out.ServerReadsPerMsg = ptr(float64(res.serverIO.Reads) / float64(res.msgs))
			out.ServerWritesPerMsg = ptr(float64(res.serverIO.Writes) / float64(res.msgs))
		}
	}
	return out
}

// latency is the histogram's percentiles in microseconds, as results report them.
func (h *histogram) latency() *latencyJSON {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return &latencyJSON{
		P50: us(h.percentile(50)), P90: us(h.percentile(90)), P99: us(h.percentile(99)),
		P999: us(h.percentile(99.9)), Max: us(h.max), Mean: h.mean() / 1e3,
	}
}

// setServerCPU fills the server's CPU figures of a run of secs seconds that made units
// messages (or connections): the error when the reading failed, nothing when there was
// none (cpu < 0), the per-unit figure only when units > 0.
func (out *resultJSON) setServerCPU(cpu time.Duration, err error, units int64, secs float64) {
	if err != nil {
		out.ServerCPUError = err.Error()
		return
	}
	if cpu < 0 {
		return
	}
	out.ServerCPUSec = ptr(cpu.Seconds())
	if units > 0 {
		out.ServerCPUNsPerMsg = ptr(float64(cpu.Nanoseconds()) / float64(units))
	}
	if secs > 0 {
		out.ServerCPUUtil = ptr(cpu.Seconds() / secs)
	}
}

// idleJSON is the result of an idle run.
func idleJSON(o *options, res *idleResult) *resultJSON {
	out := &resultJSON{
		Mode: "idle", Label: o.label, Proto: o.proto, Transport: o.transport(), LinePrefix: o.linePrefix, Addr: o.addr,
		Conns: o.idle, Size: o.size, Time: time.Now().UTC().Format(time.RFC3339),
		OpenConns: res.open, ServerPID: o.serverPID,
		Errors: res.errs.total(), ErrorKinds: res.errs.kinds, ErrorSample: res.errs.summary(),
	}
	if res.open > 0 {
		out.ClientRSSPerConn = float64(res.selfAfter-res.selfBefore) / float64(res.open)
	}
	if o.serverPID > 0 {
		if res.serverErr != nil {
			out.ServerMemoryError = res.serverErr.Error()
		} else {
			out.RSSBefore, out.RSSAfter = res.rssBefore, res.rssAfter
			if res.open > 0 {
				out.RSSPerConn = ptr(float64(res.rssAfter-res.rssBefore) / float64(res.open))
			}
		}
	}
	return out
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain values
	}
	fmt.Fprintf(w, "%s\n", b)
}
