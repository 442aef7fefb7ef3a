package daemon

import (
	"io"
	"net/http"

	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// opsHandler serves the operations listener.
func (d *Daemon) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if reason := d.notReady(); reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, reason+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}

// notReady says why the proxy cannot yet move any EL, or "" when it can: a writer is
// elected and at least one EL answers.
func (d *Daemon) notReady() string {
	if _, ok := d.proxy.Tracker().Writer(); !ok {
		return "no writer: no beacon node has sent a request yet"
	}
	for _, l := range d.proxy.Lanes() {
		if l.Role() != upstream.RoleRelay && l.State() == upstream.StateUp {
			return ""
		}
	}
	return "no execution client is reachable"
}
