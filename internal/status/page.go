package status

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/proxy"
)

//go:embed page.html.tmpl
var pageFS embed.FS

// Server serves one proxy's snapshot as JSON ([Server.ServeJSON]) and as an HTML page
// ([Server.ServeHTML]). It is safe for concurrent use.
type Server struct {
	p    *proxy.Proxy
	o    Options
	page *template.Template
}

// NewServer returns a server for p. It fails only if the embedded page does not parse.
func NewServer(p *proxy.Proxy, o Options) (*Server, error) {
	if p == nil {
		return nil, fmt.Errorf("status server: no proxy")
	}
	t, err := template.New("page.html.tmpl").Funcs(funcs).ParseFS(pageFS, "page.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parse status page: %w", err)
	}
	return &Server{p: p, o: o.withDefaults(), page: t}, nil
}

// Snapshot takes a snapshot now.
func (s *Server) Snapshot() Snapshot { return Build(s.p, s.o) }

// ServeJSON writes the snapshot as JSON.
func (s *Server) ServeJSON(w http.ResponseWriter, _ *http.Request) {
	body, err := json.MarshalIndent(s.Snapshot(), "", "  ")
	if err != nil {
		http.Error(w, "encode status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n')) // an operator who hung up cannot be told anything
}

// ServeHTML writes the status page.
func (s *Server) ServeHTML(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	v := pageView{Snapshot: s.Snapshot(), RefreshSeconds: int(math.Ceil(s.o.Refresh.Seconds()))}
	if err := s.page.Execute(&buf, v); err != nil {
		http.Error(w, "render status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Everything is inline; nothing may be loaded from anywhere.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(buf.Bytes())
}

// pageView is what the template renders.
type pageView struct {
	Snapshot
	RefreshSeconds int
}

// badge is a state shown as a coloured label that also says its state in words and with a
// symbol, so it reads without colour.
type badge struct {
	Tone   string // ok, warn, bad, info, muted: the CSS class
	Symbol string
	Text   string
}

var funcs = template.FuncMap{
	"elState":  elState,
	"elSync":   elSync,
	"verdict":  verdict,
	"bnHealth": bnHealth,
	"ago":      ago,
	"slots":    slots,
	"short":    short,
	"utc":      utc,
	"ms":       ms,
	"drops":    dropList,
	"bytes":    byteSize,
}

// byteSize writes a byte count for people: "0 B", "812 KiB", "31.5 MiB", "1.2 GiB".
func byteSize(n any) string {
	var v float64
	switch x := n.(type) {
	case int64:
		v = float64(x)
	case uint64:
		v = float64(x)
	case int:
		v = float64(x)
	}
	switch {
	case v < 1<<10:
		return fmt.Sprintf("%.0f B", v)
	case v < 1<<20:
		return fmt.Sprintf("%.0f KiB", v/(1<<10))
	case v < 1<<30:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", v/(1<<30))
}

func elState(e EL) badge {
	switch e.State {
	case "up":
		return badge{"ok", "●", "UP"}
	case "down":
		return badge{"bad", "✕", "DOWN"}
	case "unauthorized":
		return badge{"bad", "✕", "401 UNAUTHORIZED"}
	}
	return badge{"muted", "○", "NOT CONTACTED"}
}

func elSync(e EL) badge {
	switch e.Sync {
	case SyncInSync:
		return badge{"ok", "✓", "IN SYNC"}
	case SyncLagging:
		if e.LagSlots != nil && *e.LagSlots > LagToleranceSlots {
			return badge{"warn", "▲", "LAGGING " + slots(*e.LagSlots)}
		}
		return badge{"warn", "▲", "LAGGING (" + e.LastStatus + ")"}
	case SyncBehind:
		return badge{"bad", "▼", "BEHIND: HEALING"}
	case SyncLost:
		return badge{"bad", "▼", "LOST A BLOCK: CATCHING UP"}
	}
	return badge{"muted", "?", "SYNC UNKNOWN"}
}

func verdict(s string) badge {
	switch engine.Status(s) {
	case engine.StatusValid:
		return badge{"ok", "✓", s}
	case engine.StatusInvalid, engine.StatusInvalidBlockHash:
		return badge{"bad", "✕", s}
	case engine.StatusSyncing, engine.StatusAccepted:
		return badge{"warn", "…", s}
	case "":
		return badge{"muted", "–", "NO VERDICT YET"}
	}
	return badge{"warn", "?", s}
}

func bnHealth(b BN) badge {
	if b.Healthy {
		return badge{"ok", "●", "HEALTHY"}
	}
	return badge{"bad", "✕", "UNHEALTHY: " + b.Unhealthy}
}

// ago formats how long before now t was.
func ago(now time.Time, t *time.Time) string {
	if t == nil {
		return "never"
	}
	d := max(now.Sub(*t), 0)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	}
	return d.Truncate(time.Minute).String() + " ago"
}

// slots formats a lag in slots.
func slots(v float64) string {
	if v == 1 {
		return "1 slot"
	}
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64) + " slots"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " slots"
}

// short abbreviates a hash to 0x1234…abcd.
func short(h engine.Hash) string {
	s := h.String()
	return s[:6] + "…" + s[len(s)-4:]
}

func utc(ts uint64) string {
	return time.Unix(int64(min(ts, 1<<33)), 0).UTC().Format("15:04:05 UTC")
}

func ms(sec float64) string {
	return strconv.FormatFloat(sec*1000, 'f', 1, 64) + " ms"
}

// dropList formats drops by reason, in a stable order, zeros left out.
func dropList(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	var total uint64
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
			total += v
		}
	}
	if total == 0 {
		return "none"
	}
	slices.Sort(keys)
	out := strconv.FormatUint(total, 10) + " ("
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += k + " " + strconv.FormatUint(m[k], 10)
	}
	return out + ")"
}
