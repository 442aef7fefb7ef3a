//go:build !race

package bodies

// RaceBuild is true in a -race build: the proxy's pools run in debug mode there.
const RaceBuild = false
