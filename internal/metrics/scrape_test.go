package metrics_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sync-proxy/sync-proxy/internal/metrics"
	"github.com/sync-proxy/sync-proxy/internal/status"
	"github.com/sync-proxy/sync-proxy/internal/status/statustest"
)

// samples is one scrape of /metrics: series key (name{k="v",...}, labels sorted) → value.
type samples map[string]float64

// key builds a series key from a name and label pairs.
func key(name string, kv ...string) string {
	if len(kv) == 0 {
		return name
	}
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+"="+strconv.Quote(kv[i+1]))
	}
	slices.Sort(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// families returns the metric family names in the scrape (histogram series folded).
func (s samples) families() []string {
	seen := map[string]bool{}
	for k := range s {
		name, _, _ := strings.Cut(k, "{")
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok && s.has(base+"_count") {
				name = base
			}
		}
		seen[name] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (s samples) has(prefix string) bool {
	for k := range s {
		if k == prefix || strings.HasPrefix(k, prefix+"{") {
			return true
		}
	}
	return false
}

// seriesLine matches one sample line of the text format (no timestamps: promhttp writes none).
var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$`)

// labelPair matches one label in a label set.
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// parse reads the Prometheus text format.
func parse(t *testing.T, r io.Reader) samples {
	t.Helper()
	out := samples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := seriesLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line: %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		var kv []string
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			val, err := strconv.Unquote(`"` + p[2] + `"`)
			if err != nil {
				t.Fatalf("bad label value in %q: %v", line, err)
			}
			kv = append(kv, p[1], val)
		}
		out[key(m[1], kv...)] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	return out
}

// env is a rig with metrics registered on a fresh registry, served at /metrics.
type env struct {
	*statustest.Rig
	reg     *prometheus.Registry
	metrics *httptest.Server
}

func newEnv(t *testing.T, o statustest.Options, mo metrics.Options) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	if mo.Version == "" {
		mo.Version = "v-test"
	}
	m, err := metrics.New(reg, mo)
	if err != nil {
		t.Fatalf("metrics.New: %v", err)
	}
	o.Hooks = m.ProxyHooks()
	r := statustest.New(t, o)
	if err := m.Watch(r.Proxy, status.Options{SlotDuration: statustest.Slot, Clock: r.Clock}); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.PanicOnError}))
	t.Cleanup(srv.Close)
	return &env{Rig: r, reg: reg, metrics: srv}
}

// scrape reads /metrics over HTTP.
func (e *env) scrape(t *testing.T) samples {
	t.Helper()
	resp, err := http.Get(e.metrics.URL)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	return parse(t, resp.Body)
}

// want is one expected sample. A negative value -v means "at least v": lane counters also
// count the lane's own catch-up queries, which depend on timing.
type want struct {
	name   string
	labels []string
	value  float64
}

func check(t *testing.T, s samples, wants []want) {
	t.Helper()
	for _, w := range wants {
		k := key(w.name, w.labels...)
		got, ok := s[k]
		switch {
		case !ok:
			t.Errorf("%s: missing from /metrics", k)
		case w.value < 0 && got < -w.value:
			t.Errorf("%s = %v; want at least %v", k, got, -w.value)
		case w.value >= 0 && got != w.value:
			t.Errorf("%s = %v; want %v", k, got, w.value)
		}
	}
}
