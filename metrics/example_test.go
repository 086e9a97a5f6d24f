package metrics_test

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/metrics"
)

// Export one server's counters and request latency on /metrics.
func Example() {
	hist := metrics.NewRequestHistogram()
	srv, err := supersocket.New(supersocket.Config{
		Name:           "chat",
		Listeners:      []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		ObserveRequest: hist.Observer("chat"), // the latency histogram, labelled server="chat"
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) { s.Send(req.Frame) },
	})
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(hist, metrics.NewCollector("chat", srv.Stats))
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// srv.Serve(ctx); http.ListenAndServe(":9100", nil) …
}
