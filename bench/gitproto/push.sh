#!/usr/bin/env bash
# Initial push only, ROUNDS times: weir against C git's http-backend, each
# round into a fresh repo on both sides, alternating which goes first.
#
#   bench/gitproto/push.sh                  the generated history of run.sh (COMMITS, FILES)
#   bench/gitproto/push.sh -repo PATH       a real repository: its branches and tags
#   ROUNDS=5 bench/gitproto/push.sh ...     (default 3)
#
# Prints each round's seconds, the medians and their ratio (weir/C git),
# with the load average before and after: the machine may be shared.
set -euo pipefail
REPO=
if [[ ${1:-} == -repo ]]; then
	REPO=$(cd "${2:?-repo needs a path}" && pwd)
	shift 2
fi
cd "$(dirname "$0")/../.."
COMMITS=${COMMITS:-2000}
FILES=${FILES:-300}
ROUNDS=${ROUNDS:-3}

W=$(mktemp -d /tmp/weir-bench-push.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

go build -o "$W/weir" ./cmd/weir
go build -o "$W/cgishim" ./bench/gitproto/cgishim
GEN=$(sed -n "/<<'PY'/,/^PY\$/p" bench/gitproto/run.sh | sed '1d;$d')
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
git config --global user.name Bench
git config --global user.email bench@weir.test
git config --global init.defaultBranch main
git config --global http.postBuffer 2000000000

if [[ -n $REPO ]]; then
	git clone -q --mirror "$REPO" "$W/src.git"
	REFS=(refs/heads/*:refs/heads/* refs/tags/*:refs/tags/*)
else
	git init -q --bare "$W/src.git"
	/usr/bin/env python3 -c "$GEN" "$COMMITS" "$FILES" | git -C "$W/src.git" fast-import --quiet
	git -C "$W/src.git" repack -q -a -d -f
	REFS=(refs/heads/main:refs/heads/main)
fi
objects=$(git -C "$W/src.git" rev-list --objects --branches --tags | wc -l)
refs=$(git -C "$W/src.git" for-each-ref refs/heads refs/tags | wc -l)
echo "== ${REPO:-generated}: $objects objects, $refs refs"

mkdir -p "$W/cgit"
"$W/weir" serve --data "$W/weir-data" --http 127.0.0.1:0 --ssh "" >"$W/weir.out" 2>"$W/weir.log" &
pids+=($!)
"$W/cgishim" 127.0.0.1:0 "$W/cgit" >"$W/cgi.out" 2>"$W/cgi.log" &
pids+=($!)
for _ in $(seq 100); do
	grep -q '^weir serve: http' "$W/weir.out" 2>/dev/null && grep -q '^listening' "$W/cgi.out" 2>/dev/null && break
	sleep 0.1
done
WEIR=$(sed -n 's#^weir serve: http \(http://[^/]*\)/.*#\1#p' "$W/weir.out")
CGIT=$(sed -n 's#^listening ##p' "$W/cgi.out")
[[ -n $WEIR && -n $CGIT ]] || { echo "servers did not start"; cat "$W/weir.log" "$W/cgi.log"; exit 1; }

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pushweir() {
	local t; t=$(now)
	git -C "$W/src.git" push -q "$WEIR/p$1.git" "${REFS[@]}"
	echo "$(now) - $t" | bc -l >>"$W/weir.times"
}
pushcgit() {
	git init -q --bare "$W/cgit/p$1.git"
	git -C "$W/cgit/p$1.git" config http.receivepack true
	local t; t=$(now)
	git -C "$W/src.git" push -q "$CGIT/p$1.git" "${REFS[@]}"
	echo "$(now) - $t" | bc -l >>"$W/cgit.times"
}
echo "   load before: $(uptime | sed 's/.*average: //')"
for r in $(seq "$ROUNDS"); do
	if ((r % 2)); then pushweir "$r"; pushcgit "$r"; else pushcgit "$r"; pushweir "$r"; fi
	printf "   round %d: weir %.2f s, C git %.2f s\n" "$r" "$(tail -1 "$W/weir.times")" "$(tail -1 "$W/cgit.times")"
done
echo "   load after:  $(uptime | sed 's/.*average: //')"
w=$(median <"$W/weir.times")
c=$(median <"$W/cgit.times")
printf "initial push, median of %d: weir %.2f s, C git %.2f s, weir/C git %.2fx\n" "$ROUNDS" "$w" "$c" "$(echo "$w / $c" | bc -l)"
