package engine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// MaxReadBudget is the longest an operator may let sync-proxy wait for an EL's answer to a
// read: geth's HTTP write timeout is 30 s, so waiting much longer only holds a connection
// that no answer will come back on.
const MaxReadBudget = 2 * time.Minute

// Read budgets of the eth_* methods ELs serve on the engine port (execution-apis
// src/engine/common.md), which the Engine API gives no timeout. Cheap lookups get the
// Engine API's default second; block and code lookups and a transaction's submission a few
// more (a cold database, a full mempool); eth_call a second over geth's own 5 s EVM
// timeout, so geth's answer (an error naming the timeout) comes first; eth_getLogs geth's
// 30 s HTTP write timeout, the longest geth itself tries.
var readBudgets = map[string]time.Duration{
	"eth_chainId":            time.Second,
	"eth_blockNumber":        time.Second,
	"eth_syncing":            time.Second,
	"eth_getBlockByHash":     5 * time.Second,
	"eth_getBlockByNumber":   5 * time.Second,
	"eth_getCode":            5 * time.Second,
	"eth_sendRawTransaction": 5 * time.Second,
	"eth_call":               6 * time.Second,
	"eth_getLogs":            30 * time.Second,
}

// Budgets is how long to wait for an EL's answer to each method: the Engine API's timeout for
// engine_* methods, a per-method default for the eth_* reads, and the operator's overrides,
// which only reads may have (a block's or a head update's timeout is the spec's: waiting
// longer would hold every later block of that EL's lane). The zero value has no overrides.
type Budgets struct {
	over map[string]time.Duration
}

// NewBudgets checks the overrides (method → budget) and returns the budgets. A method must be
// a read that sync-proxy forwards, and its budget positive and at most MaxReadBudget.
func NewBudgets(over map[string]time.Duration) (Budgets, error) {
	var errs []error
	for _, m := range slices.Sorted(maps.Keys(over)) {
		d := over[m]
		switch {
		case !ServedOnEnginePort(m):
			errs = append(errs, fmt.Errorf("%s: not a method sync-proxy forwards (engine_* and the eth_* methods of the engine port)", m))
		case Classify(m) == ClassNewPayload || Classify(m) == ClassForkchoice || Classify(m) == ClassGetPayload:
			errs = append(errs, fmt.Errorf("%s: not a read; a block's, head update's or build's timeout is the Engine API's (%s)", m, Timeout(m)))
		case d <= 0 || d > MaxReadBudget:
			errs = append(errs, fmt.Errorf("%s=%s: want more than 0 and at most %s", m, d, MaxReadBudget))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Budgets{}, err
	}
	return Budgets{over: maps.Clone(over)}, nil
}

// ParseBudget reads one override, "method=duration" (eth_getLogs=60s).
func ParseBudget(s string) (method string, d time.Duration, err error) {
	method, v, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || method == "" || v == "" {
		return "", 0, fmt.Errorf("%q: want method=duration, e.g. eth_getLogs=60s", s)
	}
	d, err = time.ParseDuration(v)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", s, err)
	}
	return method, d, nil
}

// For returns how long to wait for an EL's answer to method.
func (b Budgets) For(method string) time.Duration {
	if d, ok := b.over[method]; ok {
		return d
	}
	if d, ok := readBudgets[method]; ok {
		return d
	}
	return Timeout(method)
}

// Longest returns the longest budget of any method: an answer relayed to a beacon node may
// take that long.
func (b Budgets) Longest() time.Duration {
	longest := timeoutPayloadBodies
	for _, d := range readBudgets {
		longest = max(longest, d)
	}
	for _, d := range b.over {
		longest = max(longest, d)
	}
	return longest
}
