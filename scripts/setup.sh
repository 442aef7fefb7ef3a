#!/usr/bin/env bash
# setup.sh [staticcheck] [geth] [system] [lodestar]: installs what `make test` needs, once. With no
# argument it does all four, in that order. When everything is there it prints one line and takes
# well under a second.
#
#   staticcheck, geth
#             pinned, through `go install` into $(go env GOBIN) or $(go env GOPATH)/bin
#             (GETH_BINARY set: that geth is used, none is installed);
#   system    nginx, Chromium, nftables, iproute2, Node.js (and npm, g++, make, python3 while
#             Lodestar is still to be built): installed with apt-get when run as root on Debian
#             or Ubuntu, otherwise it stops with one line naming the exact command to run;
#   lodestar  Lodestar v1.5.1 from npm into $SYNC_PROXY_LODESTAR_DIR
#             (default ~/.cache/sync-proxy/lodestar), about a minute and 220 MB.
#
# It needs nothing but bash, Go and the usual base tools (awk, sort) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

go=${GO:-go}
geth_version=v1.17.10
staticcheck_version=v0.8.2
lodestar_version=1.5.1
lodestar_dir=${SYNC_PROXY_LODESTAR_DIR:-$HOME/.cache/sync-proxy/lodestar}
lodestar_stamp=$lodestar_dir/.sync-proxy-installed-$lodestar_version

gobin=$("$go" env GOBIN)
[ -n "$gobin" ] || gobin=$("$go" env GOPATH)/bin
export PATH="$gobin:$PATH"

say() { echo "setup: $*"; }
have() { command -v "$1" >/dev/null 2>&1; }
ready=()

# modversion BIN: the module version a Go binary was built from; empty when BIN is absent.
modversion() {
  [ -x "$1" ] || return 0
  { "$go" version -m "$1" 2>/dev/null || true; } | awk '$1 == "mod" { print $3; exit }'
}

# gotool NAME PACKAGE VERSION: NAME at VERSION in $gobin, installed or replaced when it is not.
gotool() {
  local name=$1 pkg=$2 want=$3 got
  got=$(modversion "$gobin/$name")
  if [ "$got" != "$want" ]; then
    local replacing=""
    [ ! -e "$gobin/$name" ] || replacing=", replacing ${got:-a build of unknown version}"
    say "installing $name $want into $gobin (go install$replacing; geth takes a few minutes)"
    rm -f "$gobin/$name" # go install will not overwrite a file that is not a Go binary
    GOBIN=$gobin "$go" install "$pkg@$want"
  fi
  ready+=("$name $want")
}

staticcheck() { gotool staticcheck honnef.co/go/tools/cmd/staticcheck "$staticcheck_version"; }

geth() {
  if [ -n "${GETH_BINARY:-}" ]; then
    [ -x "$GETH_BINARY" ] || { say "GETH_BINARY=$GETH_BINARY is not an executable"; exit 1; }
    ready+=("geth $GETH_BINARY")
  else
    gotool geth github.com/ethereum/go-ethereum/cmd/geth "$geth_version"
  fi
}

lodestar_installed() { [ -f "$lodestar_stamp" ]; }

system() {
  local pkgs=()
  have nginx || [ -x /usr/sbin/nginx ] || pkgs+=(nginx)
  have chromium || have chromium-browser || [ -x "${CHROMIUM:-/nonexistent}" ] || pkgs+=(chromium)
  have nft || [ -x /usr/sbin/nft ] || pkgs+=(nftables)
  { have ip || [ -x /usr/sbin/ip ]; } && { have tc || [ -x /usr/sbin/tc ]; } || pkgs+=(iproute2)
  have node || pkgs+=(nodejs)
  if ! lodestar_installed; then
    # building Lodestar's two native addons needs Node's headers, npm and a C++ toolchain
    [ -f /usr/include/node/node.h ] || [ -n "${NODEDIR:-}" ] || pkgs+=(nodejs)
    have npm || pkgs+=(npm)
    have g++ || pkgs+=(g++)
    have make || pkgs+=(make)
    have python3 || pkgs+=(python3)
  fi
  [ -f /etc/ssl/certs/ca-certificates.crt ] || pkgs+=(ca-certificates)
  if [ ${#pkgs[@]} -gt 0 ]; then
    local list
    list=$(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')
    list=${list% }
    if [ "$(id -u)" = 0 ] && have apt-get; then
      say "installing $list (apt-get)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      # shellcheck disable=SC2086 # one package per word
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $list >/dev/null
    else
      say "missing system packages; install them with: sudo apt-get install -y --no-install-recommends $list"
      exit 1
    fi
  fi
  ready+=("nginx" "chromium" "nftables" "iproute2" "node")
  [ "$(id -u)" = 0 ] || say "note: test/netfault needs root (network namespaces): run make test as root; make check needs no root"
}

lodestar() {
  if ! lodestar_installed; then
    # an install from before the stamp existed: keep it when Lodestar starts
    if [ -f "$lodestar_dir/node_modules/@chainsafe/lodestar/lib/index.js" ] &&
       node "$lodestar_dir/node_modules/@chainsafe/lodestar/lib/index.js" --version 2>/dev/null | grep -qi version; then
      :
    else
      say "installing Lodestar v$lodestar_version into $lodestar_dir (npm, about a minute)"
      mkdir -p "$lodestar_dir"
      bash scripts/lodestar/install.sh "$lodestar_dir" >"$lodestar_dir/install.log" 2>&1 || {
        tail -30 "$lodestar_dir/install.log" >&2
        say "installing Lodestar failed; the whole log: $lodestar_dir/install.log"
        exit 1
      }
    fi
    : >"$lodestar_stamp"
  fi
  ready+=("lodestar v$lodestar_version")
}

[ $# -gt 0 ] || set -- staticcheck geth system lodestar
for part in "$@"; do
  case $part in
    staticcheck | geth | system | lodestar) "$part" ;;
    *) echo "usage: scripts/setup.sh [staticcheck] [geth] [system] [lodestar]" >&2; exit 2 ;;
  esac
done
list=$(printf '%s, ' "${ready[@]}")
say "ready: ${list%, }"
