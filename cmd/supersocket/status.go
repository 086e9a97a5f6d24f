package main

import (
	"os"
	"runtime"
	"time"

	"github.com/supersocket-go/supersocket"
)

// statusDoc is the JSON document of GET /status: SuperSocket's server state, for every
// server the process runs.
type statusDoc struct {
	PID           int            `json:"pid"`
	GoVersion     string         `json:"go_version"`
	Started       time.Time      `json:"started"` // when the serve command started
	Uptime        string         `json:"uptime"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Goroutines    int            `json:"goroutines"`
	Servers       []serverStatus `json:"servers"`
}

// serverStatus is one server's state, settings and counters.
type serverStatus struct {
	Name  string `json:"name"`
	App   string `json:"app"`
	State string `json:"state"` // NotStarted, Starting, Running, Stopping
	// Started is when the server last started; null while it is not running.
	Started          *time.Time       `json:"started"`
	Uptime           string           `json:"uptime,omitempty"`
	UptimeSeconds    float64          `json:"uptime_seconds"`
	Mode             string           `json:"mode"`
	MaxConnections   int              `json:"max_connections"`
	MaxRequestLength int              `json:"max_request_length"`
	IdleTimeout      string           `json:"idle_timeout"`
	Listeners        []listenerStatus `json:"listeners"`

	Sessions          int64             `json:"sessions"`
	Parked            int64             `json:"parked"` // idle sessions without a goroutine
	Accepted          uint64            `json:"accepted"`
	Refused           uint64            `json:"refused"`
	Requests          uint64            `json:"requests"`
	BytesIn           uint64            `json:"bytes_in"`
	BytesOut          uint64            `json:"bytes_out"`
	SendQueueFull     uint64            `json:"send_queue_full"`
	HandshakeFailures uint64            `json:"handshake_failures"`
	DatagramsDropped  uint64            `json:"datagrams_dropped"`
	Closes            map[string]uint64 `json:"closes"` // by close reason, every reason listed
}

// listenerStatus is one bound listener (or, while the server is not running, one
// configured listener, with zero counters).
type listenerStatus struct {
	Network  string `json:"network"`
	Addr     string `json:"addr"`
	TLS      bool   `json:"tls"`
	Accepted uint64 `json:"accepted"`
	Sessions int64  `json:"sessions"`
}

// status builds the document at now.
func status(servers []namedServer, started, now time.Time) statusDoc {
	doc := statusDoc{
		PID:           os.Getpid(),
		GoVersion:     runtime.Version(),
		Started:       started,
		Uptime:        now.Sub(started).Round(time.Millisecond).String(),
		UptimeSeconds: now.Sub(started).Seconds(),
		Goroutines:    runtime.NumGoroutine(),
		Servers:       make([]serverStatus, 0, len(servers)),
	}
	for _, s := range servers {
		doc.Servers = append(doc.Servers, serverStatusOf(s, now))
	}
	return doc
}

func serverStatusOf(s namedServer, now time.Time) serverStatus {
	st := s.srv.Stats()
	cfg := s.srv.Config()
	ss := serverStatus{
		Name:              s.name,
		App:               s.app,
		State:             s.srv.State().String(),
		Mode:              cfg.Mode,
		MaxConnections:    cfg.MaxConnections,
		MaxRequestLength:  cfg.MaxRequestLength,
		IdleTimeout:       cfg.IdleTimeout.String(),
		Listeners:         []listenerStatus{},
		Sessions:          st.Sessions,
		Parked:            st.Parked,
		Accepted:          st.Accepted,
		Refused:           st.Refused,
		Requests:          st.Requests,
		BytesIn:           st.BytesIn,
		BytesOut:          st.BytesOut,
		SendQueueFull:     st.SendQueueFull,
		HandshakeFailures: st.HandshakeFailures,
		DatagramsDropped:  st.DatagramsDropped,
		Closes:            make(map[string]uint64, len(st.Closes)),
	}
	if !st.Started.IsZero() {
		t := st.Started
		ss.Started = &t
		ss.Uptime = now.Sub(t).Round(time.Millisecond).String()
		ss.UptimeSeconds = now.Sub(t).Seconds()
	}
	for i, n := range st.Closes {
		ss.Closes[supersocket.CloseReason(i).String()] = n
	}
	if st.Listeners != nil {
		for _, l := range st.Listeners {
			ss.Listeners = append(ss.Listeners, listenerStatus{
				Network: l.Network, Addr: l.Addr, TLS: l.TLS, Accepted: l.Accepted, Sessions: l.Sessions,
			})
		}
	} else {
		for _, l := range cfg.Listeners {
			ss.Listeners = append(ss.Listeners, listenerStatus{Network: l.Network, Addr: l.Addr, TLS: l.TLS != nil})
		}
	}
	return ss
}
