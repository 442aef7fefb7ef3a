package beacon

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	want := Config{SlotDuration: 12 * time.Second, SilenceTimeout: 18 * time.Second, MaxWallLag: 36 * time.Second, PeerMargin: 12 * time.Second}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("DefaultConfig() = %+v, want %+v", c, want)
	}
}

func TestConfigValidate(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		cfg  Config
		want []string // one substring per expected problem
	}{
		{"defaults", DefaultConfig(), nil},
		{"test config", testConfig(), nil},
		{"wall lag disabled", Config{SlotDuration: 12 * s, SilenceTimeout: 18 * s, PeerMargin: 12 * s}, nil},
		{"thresholds of exactly one slot", Config{SlotDuration: 2 * s, SilenceTimeout: 2 * s, MaxWallLag: 2 * s, PeerMargin: 2 * s}, nil},
		{"zero value", Config{}, []string{"slot duration must be positive", "silence timeout must be positive"}},
		{
			"every field negative",
			Config{SlotDuration: -1, SilenceTimeout: -1, MaxWallLag: -1, PeerMargin: -1},
			[]string{"slot duration must be positive", "silence timeout must be positive", "max wall-clock lag must be 0", "peer margin must not be negative"},
		},
		{
			"shorter than one slot",
			Config{SlotDuration: 12 * s, SilenceTimeout: 6 * s, MaxWallLag: 6 * s, PeerMargin: 6 * s},
			[]string{"silence timeout 6s is shorter than one slot", "max wall-clock lag 6s is shorter than one slot", "peer margin 6s is shorter than one slot"},
		},
		{"table bounds", Config{SlotDuration: 12 * s, SilenceTimeout: 18 * s, PeerMargin: 12 * s, Configured: []string{"a", "b"}, MaxOthers: 1, IdleExpiry: 18 * s}, nil},
		{
			"bad table bounds",
			Config{SlotDuration: 12 * s, SilenceTimeout: 18 * s, PeerMargin: 12 * s, Configured: []string{"a", ""}, MaxOthers: -1, IdleExpiry: 17 * s},
			[]string{"cap on unconfigured beacon nodes must not be negative", "idle expiry 17s is shorter than the silence timeout 18s", "configured beacon node has an empty name"},
		},
		{"negative idle expiry", Config{SlotDuration: 12 * s, SilenceTimeout: 18 * s, PeerMargin: 12 * s, IdleExpiry: -1}, []string{"idle expiry must be 0"}},
		{"mainnet genesis", Config{SlotDuration: 12 * s, SilenceTimeout: 18 * s, PeerMargin: 12 * s, Genesis: 1606824023}, nil},
		{"genesis in milliseconds", Config{SlotDuration: 12 * s, SilenceTimeout: 18 * s, PeerMargin: 12 * s, Genesis: 1606824023000}, []string{"genesis time 1606824023000 is not a Unix time in seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %d problems", len(tt.want))
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("errors.Is(err, ErrInvalidConfig) = false")
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("Validate() error is not joined: %T", err)
			}
			if got := len(joined.Unwrap()); got != len(tt.want) {
				t.Errorf("Validate() reported %d problems, want %d: %v", got, len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing %q", err, w)
				}
			}
		})
	}
}

func TestNewTrackerErrors(t *testing.T) {
	clk := clock.NewManual(genesis)
	if _, err := NewTracker(Config{}, clk, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewTracker(zero config) error = %v, want ErrInvalidConfig", err)
	}
	if _, err := NewTracker(DefaultConfig(), nil, nil); !errors.Is(err, ErrNilClock) {
		t.Errorf("NewTracker(nil clock) error = %v, want ErrNilClock", err)
	}
	if tr, err := NewTracker(DefaultConfig(), clk, nil); err != nil || tr == nil {
		t.Errorf("NewTracker(defaults, nil logger) = %v, %v; want a tracker", tr, err)
	}
}
