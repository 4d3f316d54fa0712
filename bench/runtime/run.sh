#!/usr/bin/env bash
# Runtime build time and size against mmdebstrap alone, same machine, same run.
#
#   bench/runtime/run.sh                                  (as root; ~7 minutes)
#   PACKAGES=python3-pandas,python3-numpy bench/runtime/run.sh
#
# Builds the runtime with "weir runtime build" into a fresh data dir, then
# the same packages with a plain "mmdebstrap --variant=essential" (the
# peer: what weir adds is the /etc/weir/runtime.json step, the manifest,
# and the atomic rename), then builds the same inputs again with weir (a
# no-op by content hash). Prints the times, the ratio weir/mmdebstrap and
# the sizes. Both download from the same mirror: the second download may
# be faster where a proxy caches it, so run it twice and read the second.
set -euo pipefail
cd "$(dirname "$0")/../.."
PACKAGES=${PACKAGES:-python3-pandas,python3-numpy}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

W=$(mktemp -d /tmp/weir-bench-runtime.XXXXXX)
trap 'rm -rf "$W"' EXIT INT TERM
go build -o "$W/bin/" ./cmd/weir

t0=$(date +%s.%N)
"$W/bin/weir" runtime build bench --debian "$PACKAGES" --suite "$SUITE" --mirror "$MIRROR" --data "$W/data" 2>"$W/weir.log" >"$W/weir.out"
t1=$(date +%s.%N)
rootfs=$(awk '$1 == "rootfs" { print $2 }' "$W/weir.out")
mmdebstrap --variant=essential --include="python3,$PACKAGES" "$SUITE" "$W/peer" "$MIRROR" >"$W/peer.log" 2>&1
t2=$(date +%s.%N)
"$W/bin/weir" runtime build bench --debian "$PACKAGES" --suite "$SUITE" --mirror "$MIRROR" --data "$W/data" >/dev/null 2>&1
t3=$(date +%s.%N)

weir_s=$(echo "$t1 - $t0" | bc)
peer_s=$(echo "$t2 - $t1" | bc)
again_s=$(echo "$t3 - $t2" | bc)
printf 'packages        python3,%s (%s)\n' "$PACKAGES" "$SUITE"
printf 'weir build      %6.1f s   %s\n' "$weir_s" "$(du -sh "$rootfs" | cut -f1)"
printf 'mmdebstrap      %6.1f s   %s\n' "$peer_s" "$(du -sh "$W/peer" | cut -f1)"
printf 'ratio           %6.2f (weir/mmdebstrap; 1.00 = no overhead)\n' "$(echo "$weir_s / $peer_s" | bc -l)"
printf 'same inputs     %6.1f s   (no-op by content hash)\n' "$again_s"
grep -E '^  (python|packages)' "$W/weir.out"
