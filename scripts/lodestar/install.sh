#!/usr/bin/env bash
# Installs Lodestar v1.5.1, a real Ethereum beacon node (consensus client), from the npm registry
# into DIR (first argument; default ./.lodestar). `scripts/setup.sh lodestar` (run by `make test`)
# calls it with ~/.cache/sync-proxy/lodestar; test/e2e's Lodestar tests run it from there. Needs Node 20 with its headers, npm, g++, make,
# python3. About a minute and 220 MB. Prints the command to run Lodestar as its last line.
#
# Why pinned: the newest Lodestar whose whole dependency tree the reachable npm registry serves is
# 1.5.1, and a plain `npm install` of it floats to transitive versions that break at run time. So
# the tree is fixed by yarn.lock.in (Lodestar's own v1.5.1 lockfile, with three substitutions:
# @libp2p/prometheus-metrics 1.1.3, @chainsafe/blst 0.2.11 for Node 20 prebuilds, nan 2.22.2 so
# snappy compiles on Node 20). Install scripts are skipped; the two native addons without a usable
# prebuild (snappy, bcrypto) are compiled with node-gyp.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mkdir -p "${1:-.lodestar}" && cd "${1:-.lodestar}" && pwd)
node=${NODE:-node}
nodedir=${NODEDIR:-/usr}

command -v "$node" >/dev/null || { echo "install.sh: need node 20" >&2; exit 1; }
[[ -f $nodedir/include/node/node.h ]] || { echo "install.sh: no node headers under $nodedir (Debian: apt-get install nodejs; or set NODEDIR)" >&2; exit 1; }
for t in g++ make python3 npm; do command -v $t >/dev/null || { echo "install.sh: need $t" >&2; exit 1; }; done

registry=$(npm config get registry); registry=${registry%/}
yarn=$dir/.yarn/node_modules/.bin/yarn
if [[ ! -x $yarn ]]; then
  mkdir -p "$dir/.yarn"
  (cd "$dir/.yarn" && echo '{"name":"yarn-tool","private":true}' > package.json &&
     npm install --no-audit --no-fund --silent yarn@1.22.22)
fi
cp "$here/package.json" "$dir/package.json"
sed "s#@@NPM_REGISTRY@@#$registry#" "$here/yarn.lock.in" > "$dir/yarn.lock"
printf 'registry "%s/"\n' "$registry" > "$dir/.yarnrc"
(cd "$dir" && "$yarn" install --frozen-lockfile --ignore-scripts --ignore-engines --non-interactive \
   --silent --network-timeout 120000)
for m in snappy bcrypto; do
  (cd "$dir/node_modules/$m" && "$node" ../node-gyp/bin/node-gyp.js rebuild --nodedir="$nodedir" -j "$(nproc)" \
     > "$dir/gyp-$m.log" 2>&1) || { tail -30 "$dir/gyp-$m.log" >&2; exit 1; }
done
lodestar="$node $dir/node_modules/@chainsafe/lodestar/lib/index.js"
$lodestar --version 2>/dev/null | grep -qi version || { echo "install.sh: lodestar does not start" >&2; exit 1; }
echo "$lodestar"
