package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/supersocket-go/supersocket/cluster"
	"github.com/supersocket-go/supersocket/metrics"
)

// observability is the HTTP endpoint of -metrics-addr: /metrics, /status and
// /debug/pprof/ on a mux of its own (importing net/http/pprof also registers its handlers
// on http.DefaultServeMux, which this command never serves).
type observability struct {
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
	log  *slog.Logger
}

// clusterNode is a server that is a node of a cluster (a *cluster.Node).
type clusterNode interface {
	ID() string
	ClusterStats() cluster.Stats
}

// newRegistry registers the Go and process collectors, the request histogram and a
// collector per server.
func newRegistry(servers []namedServer, hist *metrics.RequestHistogram) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		hist,
	)
	for _, s := range servers {
		// Names are unique (checked with the config), so registration cannot fail.
		reg.MustRegister(metrics.NewCollector(s.name, s.srv.Stats))
		if node, ok := s.srv.(clusterNode); ok {
			reg.MustRegister(cluster.NewCollector(s.name, node.ID(), node.ClusterStats))
		}
	}
	return reg
}

// newObservabilityMux serves the registry, the status document and pprof.
func newObservabilityMux(reg *prometheus.Registry, servers []namedServer, started time.Time, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	})))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(status(servers, started, time.Now()))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>supersocket</title><h1>supersocket</h1><ul>
<li><a href="metrics">/metrics</a> — Prometheus metrics</li>
<li><a href="status">/status</a> — server state (JSON)</li>
<li><a href="debug/pprof/">/debug/pprof/</a> — profiles</li>
</ul>`)
	})
	return mux
}

// startObservability serves the endpoint on ln until close.
func startObservability(ln net.Listener, servers []namedServer, hist *metrics.RequestHistogram, started time.Time, log *slog.Logger) *observability {
	mux := newObservabilityMux(newRegistry(servers, hist), servers, started, log)
	o := &observability{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
		log:  log,
	}
	log.Info("serving metrics", "addr", ln.Addr().String(), "paths", "/metrics /status /debug/pprof/")
	go func() {
		defer close(o.done)
		if err := o.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint failed", "err", err)
		}
	}()
	return o
}

// close shuts the endpoint down: requests in flight get a few seconds (a CPU profile
// is cut short), then connections close. It returns when Serve has returned. A nil
// observability is off: close does nothing.
func (o *observability) close() {
	if o == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := o.srv.Shutdown(ctx); err != nil {
		o.srv.Close()
	}
	<-o.done
}
