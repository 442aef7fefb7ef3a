package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestNetwork(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantGenesis uint64
		wantErr     string // from Validate; "" for none
	}{
		{name: "none", wantGenesis: 0},
		{name: "mainnet", args: []string{"--network", "mainnet"}, wantGenesis: 1606824023},
		{name: "sepolia from the environment", env: map[string]string{"SYNC_PROXY_NETWORK": "sepolia"}, wantGenesis: 1655733600},
		{name: "hoodi, any case", args: []string{"--network", "Hoodi"}, wantGenesis: 1742212800},
		{name: "a devnet by genesis time", args: []string{"--genesis-time", "1700000000", "--slot-duration", "6s"}, wantGenesis: 1700000000},
		{name: "genesis time from the environment", env: map[string]string{"SYNC_PROXY_GENESIS_TIME": "1700000000"}, wantGenesis: 1700000000},
		{name: "agreeing genesis time", args: []string{"--network", "mainnet", "--genesis-time", "1606824023"}, wantGenesis: 1606824023},
		{name: "unknown network", args: []string{"--network", "gnosis"}, wantErr: `--network "gnosis": want mainnet, sepolia or hoodi`},
		{name: "contradicting genesis time", args: []string{"--network", "mainnet", "--genesis-time", "1"}, wantGenesis: 1, wantErr: "--genesis-time 1 contradicts --network mainnet"},
		{name: "contradicting slot duration", args: []string{"--network", "sepolia", "--slot-duration", "6s"}, wantGenesis: 1655733600, wantErr: "--slot-duration 6s contradicts --network sepolia"},
		{name: "milliseconds", args: []string{"--genesis-time", "1700000000000"}, wantGenesis: 1700000000000, wantErr: "want Unix seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(append([]string{"--el", "name=a,url=http://127.0.0.1:1,role=primary,jwt-secret=/s"}, tt.args...), env(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := c.Genesis(); got != tt.wantGenesis {
				t.Errorf("Genesis() = %d, want %d", got, tt.wantGenesis)
			}
			err = c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCapabilitiesRefreshFlag(t *testing.T) {
	c, err := Parse(nil, env(nil), io.Discard)
	if err != nil || c.CapabilitiesRefresh != 5*time.Minute {
		t.Fatalf("default %v, %v", c.CapabilitiesRefresh, err)
	}
	c, err = Parse([]string{"--capabilities-refresh", "30s"}, env(nil), io.Discard)
	if err != nil || c.CapabilitiesRefresh != 30*time.Second {
		t.Fatalf("--capabilities-refresh 30s: %v, %v", c.CapabilitiesRefresh, err)
	}
	c.CapabilitiesRefresh = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--capabilities-refresh 0s: must be positive") {
		t.Fatalf("Validate = %v", err)
	}
	if _, err := Parse([]string{"--genesis-time", "soon"}, env(nil), io.Discard); err == nil {
		t.Fatal("--genesis-time soon was accepted")
	}
}

func TestLookupNetworkSlots(t *testing.T) {
	// Cancun activated at slot 8626176 on mainnet at timestamp 1710338135 (engine-api.md §10).
	n, ok := LookupNetwork("mainnet")
	if !ok || n.Genesis+8626176*uint64(n.SlotDuration/time.Second) != 1710338135 {
		t.Fatalf("mainnet %+v does not put Cancun at 1710338135", n)
	}
}
