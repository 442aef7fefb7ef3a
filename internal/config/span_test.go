package config

import (
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseSpan(t *testing.T) {
	tests := []struct {
		in      string
		want    Span
		wantErr string
	}{
		{in: "18s", want: Span{D: 18 * time.Second}},
		{in: "500ms", want: Span{D: 500 * time.Millisecond}},
		{in: "0", want: Span{}},
		{in: "1.5slots", want: Span{Slots: 1.5}},
		{in: "2 slots", want: Span{Slots: 2}},
		{in: "1slot", want: Span{Slots: 1}},
		{in: " 3slots ", want: Span{Slots: 3}},
		{in: "0slots", wantErr: "above 0"},
		{in: "-1slots", wantErr: "above 0"},
		{in: "NaNslots", wantErr: "above 0"},
		{in: "Infslots", wantErr: "above 0"},
		{in: "1e9slots", wantErr: "up to 10000"},
		{in: "slots", wantErr: "number of slots"},
		{in: "12", wantErr: "neither a duration"},
		{in: "1.5 epochs", wantErr: "neither a duration"},
		{in: "", wantErr: "neither a duration"},
	}
	for _, tt := range tests {
		got, err := ParseSpan(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSpan(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSpan(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if back, err := ParseSpan(got.String()); err != nil || back != got {
			t.Errorf("ParseSpan(%q.String() = %q) = %+v, %v", tt.in, got.String(), back, err)
		}
	}
}

func FuzzParseSpan(f *testing.F) {
	for _, s := range []string{"18s", "1.5slots", "2 slots", "0", "1slot", "-3slots", "1e400slots", "0x1p-2slots"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpan(s)
		if err != nil {
			return
		}
		if math.IsNaN(sp.Slots) || sp.Slots < 0 || sp.Slots > maxSlots || (sp.Slots > 0 && sp.D != 0) {
			t.Fatalf("ParseSpan(%q) = %+v", s, sp)
		}
		back, err := ParseSpan(sp.String())
		if err != nil || back != sp {
			t.Fatalf("ParseSpan(%q) = %+v; its String %q reads back as %+v, %v", s, sp, sp.String(), back, err)
		}
		// Of never overflows into a negative duration for a positive count of slots.
		if sp.Slots > 0 && sp.Of(time.Hour) <= 0 {
			t.Fatalf("%+v.Of(1h) = %v", sp, sp.Of(time.Hour))
		}
	})
}

// The election thresholds follow --slot-duration unless set explicitly.
func TestElectionThresholdsFollowTheSlot(t *testing.T) {
	tests := []struct {
		name                     string
		args                     []string
		env                      map[string]string
		silence, wallLag, margin time.Duration
	}{
		{"mainnet defaults", nil, nil, 18 * time.Second, 36 * time.Second, 12 * time.Second},
		{"2s slots", []string{"--slot-duration", "2s"}, nil, 3 * time.Second, 6 * time.Second, 2 * time.Second},
		{"6s slots from the environment", nil, map[string]string{"SYNC_PROXY_SLOT_DURATION": "6s"}, 9 * time.Second, 18 * time.Second, 6 * time.Second},
		{"explicit durations stay", []string{"--slot-duration", "2s", "--silence-timeout", "10s", "--writer-margin", "4s", "--max-wall-lag", "1m"}, nil,
			10 * time.Second, time.Minute, 4 * time.Second},
		{"explicit slots", []string{"--slot-duration", "2s", "--silence-timeout", "2slots", "--max-wall-lag", "5 slots", "--writer-margin", "1.5slots"}, nil,
			4 * time.Second, 10 * time.Second, 3 * time.Second},
		{"wall lag disabled", []string{"--slot-duration", "2s", "--max-wall-lag", "0"}, nil, 3 * time.Second, 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, env(tt.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			s := c.SlotDuration
			if got := [3]time.Duration{c.SilenceTimeout.Of(s), c.MaxWallLag.Of(s), c.WriterMargin.Of(s)}; got != [3]time.Duration{tt.silence, tt.wallLag, tt.margin} {
				t.Fatalf("silence, wall lag, margin = %v, want %v %v %v", got, tt.silence, tt.wallLag, tt.margin)
			}
		})
	}
	if _, err := Parse([]string{"--silence-timeout", "soon"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "nor a number of slots") {
		t.Fatalf("--silence-timeout soon: %v", err)
	}
}
