// Package beacon tracks the beacon nodes (BNs) that send Engine API traffic to the proxy and
// elects the writer: the one BN whose forkchoiceUpdated calls may move the execution
// clients' head. It is pure logic: no goroutines, no timers, no I/O; time comes from an
// injected clock.Clock (internal/clock), and the writer is re-evaluated lazily on every call.
//
// # Head
//
// A BN's head is a block timestamp (Unix seconds; payload timestamps sit exactly on slot
// starts):
//   - before its first forkchoiceUpdated, the highest newPayload timestamp it sent;
//   - from its first forkchoiceUpdated on, the timestamp of the head named by its most
//     recent forkchoiceUpdated that the proxy could resolve ([BlockIndex]). It can go down:
//     a restarting BN that announces old heads gets an old head. A head the proxy cannot
//     resolve leaves the head where it was; it never counts as progress.
//
// newPayload stops counting once fork choice is known because a BN imports payloads it has
// not (yet) made its head: a restarting BN may import fresh gossip blocks while its fork
// choice is still far behind, and only fork choice is what the writer tells the ELs.
// Within a slot a BN sends newPayload(N+1) before forkchoiceUpdated(N+1), so for a few
// milliseconds to seconds its head is still N: at most one slot, which PeerMargin (at
// least one slot) absorbs and MaxWallLag (three slots) tolerates.
//
// With the genesis time configured ([Config.Genesis]), the beacon REST API's head slot
// ([External.HeadSlot], polled by internal/beaconapi) counts too: the BN's head is the later
// of the Engine API head above and the start of that slot, as long as the last poll reached
// the API (not [External.Offline]). This is the standard-API form of "the BN with the
// highest slot": it lets a BN whose forkchoiceUpdated heads the proxy cannot resolve, or that
// has not sent one yet, show its progress. A BN that is syncing or optimistic is unhealthy
// whatever its head slot says. Without the genesis time the head slot is only shown.
//
// # Health
//
// A BN is healthy unless, in this order of reporting:
//   - silent ([ReasonSilent]): its last request is more than SilenceTimeout old
//     (default 1.5 slots); exactly SilenceTimeout is still healthy;
//   - external ([ReasonExternal]): the latest [External] is known and says offline,
//     syncing, optimistic or execution client offline;
//   - no forkchoiceUpdated ([ReasonNoForkchoice]): it still talks, but its last
//     forkchoiceUpdated (or its first request, if it never sent one) is more than
//     SilenceTimeout old, while another BN has sent forkchoiceUpdated in two rounds since:
//     one more than half a slot after this BN's last, and a later one more than half a slot
//     after that. A writer whose fork-choice stream alone is lost is so replaced within two
//     slots. Two rounds, because after a slot with no new head the first BN to announce the
//     next one must not make the others look silent; a lone BN never qualifies;
//   - no head ([ReasonNoHead]): it has shown no head yet;
//   - behind wall clock ([ReasonWallLag]): now − head timestamp > MaxWallLag (default
//     3 slots; a head normally trails by less than one slot, by less than two after
//     a missed slot; 0 disables).
//
// # Election
//
// Every BN has a standing: healthy, else unhealthy but talking (not silent), else silent.
// The candidates are the BNs of the best standing present. Then:
//   - with no writer yet, the candidate with the highest head becomes writer
//     ([ReasonFirst]);
//   - a writer that is a candidate keeps the role unless a candidate's head has been ahead
//     of its own by strictly more than PeerMargin (default 1 slot) for longer than half a
//     slot, which then takes it ([ReasonPeerAhead]). BNs racing on the same block are at
//     most one slot apart, so they never swap the role; after a missed slot the next block
//     is two slots ahead, and the half slot gives the writer time to import it too. When
//     the writer's own forkchoiceUpdated moves its head back and so behind a candidate by
//     more than PeerMargin (a BN restarting from an old head), the role moves with that
//     request, so the ELs are not taken back with it. A step back that leaves the writer
//     within the margin (a proposer's re-org build on the parent of a late block) does not
//     count later: a peer that then announces the next block first gets the half slot
//     like any other;
//   - a writer that is not a candidate loses the role to the candidate with the highest
//     head; the change carries the writer's own unhealthy reason.
//
// Ties on the head go to the current writer, then to the BN seen first, then by name.
// So a healthy writer is sticky; a healthy BN always beats an unhealthy writer; when no BN
// is healthy the most advanced BN that still talks writes (the writer keeps the role
// within PeerMargin); and once any BN has sent a request there is always a writer.
// A silent writer loses the role at the first call after SilenceTimeout, typically the
// next request of another BN.
//
// The proxy sets [Observation.HeadKnown] on every forkchoiceUpdated, resolved or not.
//
// # Known limits
//
// Silence and wall-clock lag are absolute. If every BN is quiet for longer than
// SilenceTimeout (a missed slot, if the BNs send nothing in it), or every head crosses
// MaxWallLag (consecutive missed slots), the first BN to speak again, or to announce the
// next head, may take the role from a writer a few milliseconds slower: one change between
// level BNs, harmless, not flapping.
//
// Defaults are in slots ([SlotConfig]): SilenceTimeout 1.5 slots, MaxWallLag 3 slots,
// PeerMargin 1 slot; 18 s, 36 s and 12 s on mainnet, 3 s, 6 s and 2 s with 2 s slots.
// [Config.Validate] rejects thresholds shorter than one slot, which would make healthy BNs
// look silent or late, or make racing BNs flap.
//
// # The table
//
// The tracker keeps one entry per BN (about 350 bytes), and every call walks them under
// its lock, so the table is bounded. The BNs given with --bn ([Config.Configured]) keep
// their entries for the tracker's life. Any other name (a /bn/ path, a relay header, a
// forwarded or connection address) is admitted while fewer than [Config.MaxOthers] others
// (default 64) are in the table, and forgotten once it has sent nothing for
// [Config.IdleExpiry] (default 10 minutes; looked for every eighth of that, so forgotten at
// most an eighth late). When the table is full, a new name takes the place of the other
// that has been idle longest, if that one is silent; when every other still talks, the
// request is served but its BN is not tracked ([Table.Refused], a warning at most once a
// minute): it cannot be elected, and its forkchoiceUpdated is answered as a non-writer's.
// The writer is never forgotten or evicted. So the table holds at most
// len(Configured) + MaxOthers entries whatever the traffic, and a live BN is never pushed
// out by new names.
//
// [BlockIndex] is the bounded hash → (number, timestamp, parent) map the proxy fills from
// newPayload and uses to resolve a forkchoiceUpdated head to its timestamp.
package beacon
