package daemon

import (
	"log/slog"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beaconapi"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/config"
)

// newPoller builds the poller of the beacon nodes configured with beacon-api=URL, reporting
// to sink (the proxy's tracker). It polls three times a slot (bounded by beaconapi), so an
// unreachable API makes its beacon node offline within a slot, before it goes silent.
func newPoller(cfg config.Config, sink beaconapi.Sink, clk clock.Clock, userAgent string, log *slog.Logger) (*beaconapi.Poller, error) {
	var targets []beaconapi.Target
	for _, b := range cfg.BNs {
		if b.BeaconAPI != "" {
			targets = append(targets, beaconapi.Target{Name: b.Name, URL: b.BeaconAPI})
		}
	}
	interval := cfg.SlotDuration / 3
	return beaconapi.New(targets, sink, beaconapi.Options{
		Interval:  interval,
		Timeout:   min(beaconapi.DefaultTimeout, max(interval/2, 500*time.Millisecond)),
		UserAgent: userAgent,
		Clock:     clk,
		Log:       log.With("component", "beaconapi"),
	})
}
