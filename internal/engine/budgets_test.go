package engine

import (
	"strings"
	"testing"
	"time"
)

func TestBudgetsFor(t *testing.T) {
	b, err := NewBudgets(map[string]time.Duration{"eth_getLogs": time.Minute, "engine_getBlobsV2": 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		zero   time.Duration // without overrides
		set    time.Duration // with the overrides above
	}{
		{"engine_newPayloadV4", 8 * time.Second, 8 * time.Second},
		{"engine_newPayloadV5", 6 * time.Second, 6 * time.Second},
		{"engine_forkchoiceUpdatedV3", 8 * time.Second, 8 * time.Second},
		{"engine_getPayloadV4", time.Second, time.Second},
		{"engine_getPayloadBodiesByRangeV1", 10 * time.Second, 10 * time.Second},
		{"engine_getBlobsV2", time.Second, 3 * time.Second},
		{"engine_exchangeCapabilities", time.Second, time.Second},
		{"eth_chainId", time.Second, time.Second},
		{"eth_blockNumber", time.Second, time.Second},
		{"eth_syncing", time.Second, time.Second},
		{"eth_getBlockByNumber", 5 * time.Second, 5 * time.Second},
		{"eth_getBlockByHash", 5 * time.Second, 5 * time.Second},
		{"eth_getCode", 5 * time.Second, 5 * time.Second},
		{"eth_sendRawTransaction", 5 * time.Second, 5 * time.Second},
		{"eth_call", 6 * time.Second, 6 * time.Second},
		{"eth_getLogs", 30 * time.Second, time.Minute},
	} {
		if got := (Budgets{}).For(tc.method); got != tc.zero {
			t.Errorf("default %s: %v, want %v", tc.method, got, tc.zero)
		}
		if got := b.For(tc.method); got != tc.set {
			t.Errorf("overridden %s: %v, want %v", tc.method, got, tc.set)
		}
	}
	if got := (Budgets{}).Longest(); got != 30*time.Second {
		t.Errorf("default longest %v, want 30s", got)
	}
	if got := b.Longest(); got != time.Minute {
		t.Errorf("longest %v, want 1m", got)
	}
}

func TestNewBudgetsRefuses(t *testing.T) {
	for _, tc := range []struct {
		method string
		d      time.Duration
		want   string
	}{
		{"engine_newPayloadV4", 20 * time.Second, "not a read"},
		{"engine_forkchoiceUpdatedV3", 20 * time.Second, "not a read"},
		{"engine_getPayloadV4", 2 * time.Second, "not a read"},
		{"eth_getBalance", time.Second, "not a method sync-proxy forwards"},
		{"debug_setHead", time.Second, "not a method sync-proxy forwards"},
		{"eth_call", 0, "want more than 0"},
		{"eth_call", -time.Second, "want more than 0"},
		{"eth_getLogs", MaxReadBudget + time.Second, "at most 2m0s"},
	} {
		_, err := NewBudgets(map[string]time.Duration{tc.method: tc.d})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.method) {
			t.Errorf("%s=%v: error %v, want one naming the method and %q", tc.method, tc.d, err, tc.want)
		}
	}
	if _, err := NewBudgets(map[string]time.Duration{"eth_getLogs": MaxReadBudget}); err != nil {
		t.Errorf("the longest budget allowed was refused: %v", err)
	}
}

func TestParseBudget(t *testing.T) {
	for _, tc := range []struct {
		in     string
		method string
		d      time.Duration
		bad    bool
	}{
		{in: "eth_getLogs=60s", method: "eth_getLogs", d: time.Minute},
		{in: " eth_call=1500ms ", method: "eth_call", d: 1500 * time.Millisecond},
		{in: "eth_call", bad: true},
		{in: "=5s", bad: true},
		{in: "eth_call=", bad: true},
		{in: "eth_call=5", bad: true},
		{in: "eth_call=fast", bad: true},
	} {
		m, d, err := ParseBudget(tc.in)
		if tc.bad != (err != nil) || m != tc.method || d != tc.d {
			t.Errorf("ParseBudget(%q) = %q, %v, %v", tc.in, m, d, err)
		}
	}
}

// FuzzParseBudget: whatever the operator writes, a parsed override either is refused with an
// error naming it or comes back from For exactly, and never changes a non-read's timeout.
func FuzzParseBudget(f *testing.F) {
	for _, s := range []string{"eth_getLogs=60s", "eth_call=1500ms", "engine_newPayloadV4=20s", "eth_call=0s", "=", "a=b=c", "eth_getLogs=2m0.000000001s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, d, err := ParseBudget(s)
		if err != nil {
			return
		}
		b, err := NewBudgets(map[string]time.Duration{m: d})
		if err != nil {
			if !strings.Contains(err.Error(), m) {
				t.Fatalf("%q refused without naming %q: %v", s, m, err)
			}
			return
		}
		if got := b.For(m); got != d || d <= 0 || d > MaxReadBudget {
			t.Fatalf("%q accepted: For(%q) = %v", s, m, got)
		}
		for _, w := range []string{"engine_newPayloadV4", "engine_forkchoiceUpdatedV3", "engine_getPayloadV4"} {
			if b.For(w) != Timeout(w) {
				t.Fatalf("%q changed %s's timeout to %v", s, w, b.For(w))
			}
		}
	})
}
