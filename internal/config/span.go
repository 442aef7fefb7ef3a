package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
)

// Span is a threshold given either as a duration ("18s") or in slots of --slot-duration
// ("1.5slots"), so that the defaults follow the slot length of the network: 1.5 slots is
// 18s on mainnet and 3s on a 2s-slot devnet.
type Span struct {
	// Slots, when positive, is the threshold in slots; D is then ignored.
	Slots float64
	// D is the threshold as a duration, used when Slots is 0.
	D time.Duration
}

// InSlots returns a span of n slots.
func InSlots(n float64) Span { return Span{Slots: n} }

// Of returns the span as a duration, for slots of the given length.
func (s Span) Of(slot time.Duration) time.Duration {
	if s.Slots > 0 {
		return beacon.Slots(s.Slots, slot)
	}
	return s.D
}

// String returns the span as ParseSpan reads it: "1.5slots", "1slot" or "18s".
func (s Span) String() string {
	switch {
	case s.Slots == 1:
		return "1slot"
	case s.Slots > 0:
		return strconv.FormatFloat(s.Slots, 'f', -1, 64) + "slots"
	}
	return s.D.String()
}

// maxSlots bounds a span in slots: more than a day of mainnet slots is a typo.
const maxSlots = 10_000

// ParseSpan reads a duration ("18s", "500ms", "0") or a number of slots ("1.5slots",
// "2 slots", "1slot").
func ParseSpan(v string) (Span, error) {
	t := strings.TrimSpace(v)
	n, inSlots := strings.CutSuffix(t, "slots")
	if !inSlots {
		n, inSlots = strings.CutSuffix(t, "slot")
	}
	if inSlots {
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > maxSlots {
			return Span{}, fmt.Errorf("%q: want a number of slots above 0 and up to %d (e.g. 1.5slots)", v, maxSlots)
		}
		return Span{Slots: f}, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return Span{}, fmt.Errorf("%q is neither a duration (e.g. 18s) nor a number of slots (e.g. 1.5slots)", v)
	}
	return Span{D: d}, nil
}

// spanValue is a Span flag.
type spanValue struct{ p *Span }

func (s spanValue) String() string {
	if s.p == nil {
		return ""
	}
	return s.p.String()
}

func (s spanValue) Set(v string) error {
	sp, err := ParseSpan(v)
	if err != nil {
		return err
	}
	*s.p = sp
	return nil
}
