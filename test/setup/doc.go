// Package setup tests scripts/setup.sh, which `make test` runs first so that the suite sets itself
// up on a fresh machine: staticcheck and geth through `go install`, system packages through
// apt-get as root (or one line naming the command), Lodestar from npm; and scripts/phases.sh,
// which times each phase of `make test` and `make check`.
package setup
