package config

import (
	"fmt"
	"strings"
	"time"
)

// Network is a named chain's timing: where slot 0 starts and how long a slot is. Fork
// timestamps are not here: sync-proxy routes by method name and version, never by a fork
// schedule.
type Network struct {
	Name string
	// Genesis is the genesis time in Unix seconds: slot s starts at Genesis + s·SlotDuration.
	Genesis uint64
	// SlotDuration is the slot length.
	SlotDuration time.Duration
}

// LookupNetwork returns the timing of a named network: mainnet, sepolia or hoodi (geth
// beacon/params/networks.go; consensus-specs configs/mainnet.yaml SLOT_DURATION_MS).
func LookupNetwork(name string) (Network, bool) {
	switch strings.ToLower(name) {
	case "mainnet":
		return Network{Name: "mainnet", Genesis: 1606824023, SlotDuration: 12 * time.Second}, true
	case "sepolia":
		return Network{Name: "sepolia", Genesis: 1655733600, SlotDuration: 12 * time.Second}, true
	case "hoodi":
		return Network{Name: "hoodi", Genesis: 1742212800, SlotDuration: 12 * time.Second}, true
	}
	return Network{}, false
}

// networkNames lists the names LookupNetwork knows, for messages.
const networkNames = "mainnet, sepolia or hoodi"

// Genesis returns the chain's genesis time in Unix seconds: --genesis-time when given, else
// the --network's, else 0 (unknown: beacon API head slots are shown but are not progress).
func (c Config) Genesis() uint64 {
	if c.GenesisTime != 0 {
		return c.GenesisTime
	}
	if n, ok := LookupNetwork(c.Network); ok {
		return n.Genesis
	}
	return 0
}

// validateNetwork reports problems with --network, --genesis-time and --slot-duration.
func (c Config) validateNetwork() []error {
	var errs []error
	if c.GenesisTime >= 1<<33 {
		errs = append(errs, fmt.Errorf("--genesis-time %d: want Unix seconds", c.GenesisTime))
	}
	if c.Network == "" {
		return errs
	}
	n, ok := LookupNetwork(c.Network)
	if !ok {
		return append(errs, fmt.Errorf("--network %q: want %s (or give --genesis-time and --slot-duration)", c.Network, networkNames))
	}
	if c.GenesisTime != 0 && c.GenesisTime != n.Genesis {
		errs = append(errs, fmt.Errorf("--genesis-time %d contradicts --network %s (genesis %d): give one of them", c.GenesisTime, n.Name, n.Genesis))
	}
	if c.SlotDuration != n.SlotDuration {
		errs = append(errs, fmt.Errorf("--slot-duration %s contradicts --network %s (%s slots)", c.SlotDuration, n.Name, n.SlotDuration))
	}
	return errs
}
