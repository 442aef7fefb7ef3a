package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/metrics"
	"github.com/sync-proxy/sync-proxy/internal/status/statustest"
)

// root is the repository root, from this package's directory.
var root = filepath.Join("..", "..")

// metricName finds metric names in PromQL and Markdown.
var metricName = regexp.MustCompile(`\bsyncproxy_[a-z0-9_]+`)

// builtin are series Prometheus makes itself, which rules may use.
var builtin = []string{"up"}

// liveFamilies drives traffic that makes every family appear and returns the syncproxy_
// families in /metrics.
func liveFamilies(t *testing.T) []string {
	t.Helper()
	e := newEnv(t, statustest.Options{}, metrics.Options{})
	e.Proxy.Tracker().SetExternal("bn-a", beacon.External{Known: true, HeadSlot: 1})
	e.ELs["el-b"].SetVerdict(statustest.BlockHash(1), engine.StatusInvalid)
	e.Block("bn-a", 1)
	e.Drain()
	var out []string
	for _, f := range e.scrape(t).families() {
		if strings.HasPrefix(f, "syncproxy_") {
			out = append(out, f)
		}
	}
	return out
}

// family folds a histogram series name to its family.
func family(name string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && strings.HasSuffix(base, "_seconds") {
			return base
		}
	}
	return name
}

func usedIn(expr string) []string {
	var out []string
	for _, m := range metricName.FindAllString(expr, -1) {
		out = append(out, family(m))
	}
	return out
}

func read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

// TestMetricsDocumented checks that the README lists exactly the families /metrics has.
func TestMetricsDocumented(t *testing.T) {
	live := liveFamilies(t)
	doc := string(read(t, "README.md"))
	var listed []string
	for line := range strings.SplitSeq(doc, "\n") {
		if strings.HasPrefix(line, "| `syncproxy_") {
			listed = append(listed, family(metricName.FindString(line)))
		}
	}
	slices.Sort(listed)
	if d := slices.Compact(slices.Clone(listed)); len(d) != len(listed) {
		t.Errorf("README.md lists a metric twice: %v", listed)
	}
	for _, f := range live {
		if !slices.Contains(listed, f) {
			t.Errorf("%s is in /metrics but not in the metrics table of README.md", f)
		}
	}
	for _, f := range listed {
		if !slices.Contains(live, f) {
			t.Errorf("README.md lists %s, which /metrics does not have", f)
		}
	}
}

// TestAlertRules parses deploy/prometheus/alerts.yml and checks that its rules are complete,
// cover the cases and use only metrics that exist.
func TestAlertRules(t *testing.T) {
	live := liveFamilies(t)
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(read(t, "deploy/prometheus/alerts.yml"))))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range file.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q: alert, expr, summary and description are required", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("rule %q: severity %q; want critical or warning", r.Alert, s)
			}
			if alerts[r.Alert] {
				t.Errorf("rule %q twice", r.Alert)
			}
			alerts[r.Alert] = true
			used := usedIn(r.Expr)
			if len(used) == 0 && !slices.ContainsFunc(builtin, func(b string) bool { return strings.Contains(r.Expr, b) }) {
				t.Errorf("rule %q uses no metric: %s", r.Alert, r.Expr)
			}
			for _, m := range used {
				if !slices.Contains(live, m) {
					t.Errorf("rule %q uses %s, which /metrics does not have", r.Alert, m)
				}
			}
		}
	}
	for _, want := range []string{"SyncProxyNoWriter", "SyncProxyELLagging", "SyncProxyDivergence", "SyncProxyELUnauthorized", "SyncProxyELDown"} {
		if !alerts[want] {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
}

// TestDashboard parses deploy/grafana/dashboard.json and checks that every query uses only
// metrics that exist, and that the views are there.
func TestDashboard(t *testing.T) {
	live := liveFamilies(t)
	var dash map[string]any
	if err := json.Unmarshal(read(t, "deploy/grafana/dashboard.json"), &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if dash["title"] == "" || dash["uid"] == "" {
		t.Error("dashboard has no title or uid")
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash["panels"])
	if len(exprs) < 10 {
		t.Errorf("only %d queries", len(exprs))
	}
	shown := map[string]bool{}
	for _, e := range exprs {
		used := usedIn(e)
		if len(used) == 0 {
			t.Errorf("query uses no metric: %s", e)
		}
		for _, m := range used {
			shown[m] = true
			if !slices.Contains(live, m) {
				t.Errorf("query uses %s, which /metrics does not have: %s", m, e)
			}
		}
	}
	for _, want := range []string{"syncproxy_bn_writer", "syncproxy_requests_total", "syncproxy_writer_changes_total",
		"syncproxy_bn_lag_slots", "syncproxy_el_lag_slots", "syncproxy_el_queue_depth", "syncproxy_el_request_duration_seconds",
		"syncproxy_el_errors_total", "syncproxy_el_dropped_total", "syncproxy_el_last_status", "syncproxy_divergences_total"} {
		if !shown[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}
