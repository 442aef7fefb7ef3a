// Package netfault tests sync-proxy against real network faults: each execution client is a
// real geth in its own network namespace, reached over a veth pair the test creates, and the
// test cuts, loses, slows and blackholes those links (ip, nft, tc) while a CL driver keeps
// building blocks through sync-proxy. The faulty EL's lane must recover and catch up; the
// other ELs and the beacon node must not be held up.
//
// The tests need root and the ip, nft and tc commands; without them they fail (they never
// skip). Every namespace, link and nftables table they create is removed by name in
// t.Cleanup, even when a test fails. Addresses are 10.250.X.0/30 subnets that exist only on
// the test's own veth pairs.
package netfault
