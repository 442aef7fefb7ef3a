package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sync-proxy/sync-proxy/internal/status"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// Descriptions of the scrape-time metrics.
var (
	descWriterElected = desc("writer_elected", "1 when a beacon node holds the writer role, else 0.")
	descReady         = desc("ready", "1 when /readyz answers 200: a writer is elected and an EL is reachable.")
	descBNsHealthy    = desc("bns_healthy", "Beacon nodes that pass every health rule.")
	descELsReachable  = desc("els_reachable", "Execution clients (not relays) whose last request got an answer.")

	descBNWriter    = desc("bn_writer", "1 for the beacon node that holds the writer role, 0 for the others.", "bn")
	descBNHealthy   = desc("bn_healthy", "1 when the beacon node passes every health rule.", "bn")
	descBNHead      = desc("bn_head_timestamp_seconds", "Timestamp of the beacon node's head (Unix seconds).", "bn")
	descBNHeadSlot  = desc("bn_head_slot", "Head slot the beacon node's REST API reports (only when polled).", "bn")
	descBNLag       = desc("bn_lag_slots", "How far the beacon node's head trails the wall clock, in slots.", "bn")
	descBNTable     = desc("bn_table_nodes", "Beacon nodes in the table: kind configured (given with --bn, kept) or other (bounded by bn_table_max_others, forgotten when idle).", "kind")
	descBNTableMax  = desc("bn_table_max_others", "The most beacon nodes not given with --bn that the table holds.")
	descBNRefused   = desc("bn_refused_total", "Requests from new beacon nodes served but not tracked (never elected): the table was full of others that still talk.")
	descBNForgotten = desc("bn_forgotten_total", "Beacon nodes not given with --bn that left the table, by reason: expired (idle too long) or evicted (silent, its place given to a new node).", "reason")
	descBNSeen      = desc("bn_last_seen_timestamp_seconds", "Time of the beacon node's latest Engine API request (Unix seconds).", "bn")

	descELInfo      = desc("el_info", "Always 1; labels carry the execution client's role.", "el", "role")
	descELUp        = desc("el_up", "1 when the execution client's last request got a JSON-RPC answer.", "el")
	descELState     = desc("el_state", "1 for the execution client's current state (unknown, up, down, unauthorized), 0 for the others.", "el", "state")
	descELQueue     = desc("el_queue_depth", "Requests waiting in the execution client's lane.", "el")
	descELInFlight  = desc("el_in_flight", "1 while a request to the execution client is in flight.", "el")
	descELDelivered = desc("el_delivered_total", "Requests that got a JSON-RPC answer from the execution client (queued and reads).", "el")
	descELDedup     = desc("el_deduplicated_total", "newPayloads not sent to the execution client because it already had, or was about to get, the block (sent by another beacon node).", "el")
	descELFailed    = desc("el_failed_total", "Requests that got no JSON-RPC answer from the execution client (queued and reads).", "el")
	descELStatus    = desc("el_last_status", "1 for the payload status of the execution client's last newPayload or forkchoiceUpdated answer.", "el", "status")
	descELHead      = desc("el_head_number", "Number of the last head the execution client accepted (0 when unknown).", "el")
	descELHeadTS    = desc("el_head_timestamp_seconds", "Timestamp of the last head the execution client accepted (Unix seconds, 0 when unknown).", "el")
	descELLag       = desc("el_lag_slots", "How far the execution client's head trails the newest head seen, in slots (only when known).", "el")
	descELBehind    = desc("el_behind", "1 while the execution client is behind: it shed blocks for the backlog budget and has not yet healed.", "el")
	descELLost      = desc("el_lost", "1 while the execution client may lack a block it did not answer for: nothing that builds on it is sent until a catch-up has sent it again.", "el")
	descELShed      = desc("el_shed_blocks_total", "Blocks the execution client was not sent from its queue (shed for the backlog budget, or arrived while behind or lost); the heal or catch-up sends them from the recent blocks.", "el")
	descELShedBytes = desc("el_shed_bytes_total", "Bytes of the blocks counted in el_shed_blocks_total.", "el")
	descELHeals     = desc("el_heals_total", "Times the execution client left the behind state.", "el")
	descELBacklog   = desc("el_backlog_bytes", "Bytes the execution client's queue and request in flight hold of the backlog budget.", "el")
	descBacklog     = desc("backlog_bytes", "Bytes the lanes hold together, a body queued for several execution clients counted once.")
	descBacklogMax  = desc("backlog_budget_bytes", "The backlog budget (--backlog-bytes).")
	descELLagging   = desc("el_lagging", "1 when the execution client is lagging: head more than one slot behind, or SYNCING/ACCEPTED while another EL says VALID.", "el")
)

// snapshotCollector reads a status snapshot at scrape time.
type snapshotCollector struct {
	m    *Metrics
	snap func() status.Snapshot
}

var _ prometheus.Collector = (*snapshotCollector)(nil)

// Describe sends every description.
func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWriterElected, descReady, descBNsHealthy, descELsReachable,
		descBNWriter, descBNHealthy, descBNHead, descBNHeadSlot, descBNLag, descBNSeen,
		descBNTable, descBNTableMax, descBNRefused, descBNForgotten,
		descELInfo, descELUp, descELState, descELQueue, descELInFlight, descELDelivered, descELFailed, descELDedup,
		descELStatus, descELHead, descELHeadTS, descELLag, descELLagging,
		descELBehind, descELLost, descELShed, descELShedBytes, descELHeals, descELBacklog, descBacklog, descBacklogMax} {
		ch <- d
	}
}

// Collect takes one snapshot and sends its values.
func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descWriterElected, b2f(s.Writer != ""))
	gauge(descReady, b2f(s.Ready))
	gauge(descBNTable, float64(s.BNTable.Configured), "configured")
	gauge(descBNTable, float64(s.BNTable.Others), "other")
	gauge(descBNTableMax, float64(s.BNTable.MaxOthers))
	counter(descBNRefused, s.BNTable.Refused)
	counter(descBNForgotten, s.BNTable.Expired, "expired")
	counter(descBNForgotten, s.BNTable.Evicted, "evicted")

	healthy := 0
	for _, b := range s.BNs {
		if b.Healthy {
			healthy++
		}
		if !c.m.admitted(b.Name, true) {
			continue // past the label cap: counted in bns_healthy only
		}
		gauge(descBNWriter, b2f(b.Writer), b.Name)
		gauge(descBNHealthy, b2f(b.Healthy), b.Name)
		gauge(descBNHead, float64(b.HeadTimestamp), b.Name)
		gauge(descBNLag, b.LagSlots, b.Name)
		if b.LastSeen != nil {
			gauge(descBNSeen, float64(b.LastSeen.UnixNano())/1e9, b.Name)
		}
		if b.HeadSlot != nil {
			gauge(descBNHeadSlot, float64(*b.HeadSlot), b.Name)
		}
	}
	gauge(descBNsHealthy, float64(healthy))

	reachable := 0
	for _, e := range s.ELs {
		if e.Reachable && e.Role != upstream.RoleRelay.String() {
			reachable++
		}
		gauge(descELInfo, 1, e.Name, e.Role)
		gauge(descELUp, b2f(e.Reachable), e.Name)
		for _, st := range laneStates {
			gauge(descELState, b2f(e.State == st.String()), e.Name, st.String())
		}
		gauge(descELQueue, float64(e.QueueDepth), e.Name)
		gauge(descELInFlight, b2f(e.InFlight), e.Name)
		counter(descELDelivered, e.Delivered, e.Name)
		counter(descELFailed, e.Failed, e.Name)
		counter(descELDedup, e.Deduplicated, e.Name)
		for _, v := range verdicts {
			gauge(descELStatus, b2f(e.LastStatus == string(v)), e.Name, string(v))
		}
		var number, ts uint64
		if e.Head != nil {
			number, ts = e.Head.Number, e.Head.Timestamp
		}
		gauge(descELHead, float64(number), e.Name)
		gauge(descELHeadTS, float64(ts), e.Name)
		if e.LagSlots != nil {
			gauge(descELLag, *e.LagSlots, e.Name)
		}
		gauge(descELLagging, b2f(e.Sync == status.SyncLagging), e.Name)
		gauge(descELBehind, b2f(e.Behind), e.Name)
		gauge(descELLost, b2f(e.Lost), e.Name)
		counter(descELShed, e.ShedBlocks, e.Name)
		counter(descELShedBytes, e.ShedBytes, e.Name)
		counter(descELHeals, e.Heals, e.Name)
		gauge(descELBacklog, float64(e.BacklogBytes), e.Name)
	}
	gauge(descBacklog, float64(s.Backlog.Bytes))
	gauge(descBacklogMax, float64(s.Backlog.BudgetBytes))
	gauge(descELsReachable, float64(reachable))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
