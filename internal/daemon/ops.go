package daemon

import (
	"io"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sync-proxy/sync-proxy/internal/status"
)

// opsHandler serves the operations listener: / (the status page), /status (the same as
// JSON), /metrics (Prometheus), /healthz (the process is alive) and /readyz (503 with the
// reason until a writer is elected and an EL answers), and /debug/pprof/ with --pprof.
func (d *Daemon) opsHandler(reg *prometheus.Registry, st *status.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", st.ServeHTML)
	mux.HandleFunc("GET /status", st.ServeJSON)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:            reg, // counts promhttp's own errors
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if reason := st.Snapshot().NotReady; reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, reason+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	if d.cfg.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, … by name
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
