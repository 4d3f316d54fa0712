#!/usr/bin/env bash
# Weir's Git protocol against C git, same machine, same repo, same run.
#
#   bench/gitproto/run.sh            10k commits / 5k files (a few minutes)
#   COMMITS=2000 FILES=1000 bench/gitproto/run.sh
#
# Generates a repo with git fast-import, pushes it into weir (smart HTTP) and
# into a bare repo served by "git http-backend" (through cgishim, a
# net/http/cgi shim: the same HTTP stack shape as weir), then times, over
# HTTP, each side:
#   clone      git clone --bare (median of ROUNDS)
#   no-op      git fetch with nothing new (median of ROUNDS)
#   push 1k    a commit with 1,000 new objects (998 blobs, tree, commit)
# and prints weir/C-git ratios (lower is better for weir; 1.00 = same).
# The C git repo is "git gc"-ed first (bitmaps and deltas, as a real server).
set -euo pipefail
cd "$(dirname "$0")/../.."
COMMITS=${COMMITS:-10000}
FILES=${FILES:-5000}
ROUNDS=${ROUNDS:-3}

W=$(mktemp -d /tmp/weir-bench-gitproto.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

echo "== build"
go build -o "$W/weir" ./cmd/weir
go build -o "$W/cgishim" ./bench/gitproto/cgishim

# A clean git configuration (after the builds: go derives its caches from HOME).
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
git config --global user.name Bench
git config --global user.email bench@weir.test
git config --global init.defaultBranch main
# Send pushes with a Content-Length: net/http/cgi refuses chunked bodies.
git config --global http.postBuffer 2000000000

echo "== generate $COMMITS commits over $FILES files (fast-import)"
git init -q --bare "$W/src.git"
/usr/bin/env python3 - "$COMMITS" "$FILES" <<'PY' | git -C "$W/src.git" fast-import --quiet
import random, sys
commits, files = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
rnd = random.Random(42)
def data(b):
    out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
def path(i):
    return b"src/d%02d/e%02d/file%05d.txt" % (i % 37, i % 11, i)
for c in range(commits):
    out.write(b"commit refs/heads/main\nmark :%d\n" % (c + 1))
    out.write(b"committer Bench <bench@weir.test> %d +0000\n" % (1700000000 + c * 60))
    data(b"commit %d\n" % c)
    if c:
        out.write(b"from :%d\n" % c)
    touched = range(files) if c == 0 else rnd.sample(range(files), 3)
    for i in touched:
        out.write(b"M 100644 inline %s\n" % path(i))
        body = b"".join(b"line %d of file %d, version %d\n" % (l, i, c) for l in range(20))
        data(body)
PY
git -C "$W/src.git" gc -q
objects=$(git -C "$W/src.git" count-objects -v | awk '/^in-pack/ {print $2}')
echo "   $objects objects"

echo "== start weir and git http-backend"
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
elapsed() { echo "$(now) - $1" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { printf "%.2f" "$(echo "$1 / $2" | bc -l)"; }

echo "== initial push of the whole repo"
git init -q --bare "$W/cgit/bench.git"
git -C "$W/cgit/bench.git" config http.receivepack true
t=$(now); git -C "$W/src.git" push -q "$WEIR/bench.git" main; push_all_weir=$(elapsed "$t")
t=$(now); git -C "$W/src.git" push -q "$CGIT/bench.git" main; push_all_cgit=$(elapsed "$t")
git -C "$W/cgit/bench.git" gc -q

echo "== clone (x$ROUNDS)"
clone() { # URL -> seconds
	rm -rf "$W/clone"
	local t
	t=$(now)
	git clone -q --bare "$1" "$W/clone"
	elapsed "$t"
}
clone_weir=$(for _ in $(seq "$ROUNDS"); do clone "$WEIR/bench.git"; done | median)
clone_cgit=$(for _ in $(seq "$ROUNDS"); do clone "$CGIT/bench.git"; done | median)

echo "== no-op fetch (x$ROUNDS)"
git clone -q "$WEIR/bench.git" "$W/cw"
git clone -q "$CGIT/bench.git" "$W/cc"
noop() { # DIR -> seconds
	local t
	t=$(now)
	git -C "$1" fetch -q origin
	elapsed "$t"
}
noop_weir=$(for _ in $(seq "$ROUNDS"); do noop "$W/cw"; done | median)
noop_cgit=$(for _ in $(seq "$ROUNDS"); do noop "$W/cc"; done | median)

echo "== push of 1,000 new objects (x$ROUNDS)"
push1k() { # DIR ROUND -> seconds
	local d=$1 r=$2 t
	mkdir -p "$d/new$r"
	for i in $(seq 998); do echo "round $r file $i $RANDOM" >"$d/new$r/f$i.txt"; done
	git -C "$d" add "new$r" >/dev/null
	git -C "$d" commit -q -m "1k objects, round $r"
	t=$(now)
	git -C "$d" push -q origin main
	elapsed "$t"
}
push_weir=$(for r in $(seq "$ROUNDS"); do push1k "$W/cw" "$r"; done | median)
push_cgit=$(for r in $(seq "$ROUNDS"); do push1k "$W/cc" "$r"; done | median)

printf '\n%-34s %10s %10s %8s\n' "$COMMITS commits, $FILES files ($objects objects)" weir "C git" ratio
printf '%-34s %9.3fs %9.3fs %8s\n' "initial push (whole repo)" "$push_all_weir" "$push_all_cgit" "$(ratio "$push_all_weir" "$push_all_cgit")"
printf '%-34s %9.3fs %9.3fs %8s\n' "clone --bare over HTTP (median)" "$clone_weir" "$clone_cgit" "$(ratio "$clone_weir" "$clone_cgit")"
printf '%-34s %9.3fs %9.3fs %8s\n' "no-op fetch (median)" "$noop_weir" "$noop_cgit" "$(ratio "$noop_weir" "$noop_cgit")"
printf '%-34s %9.3fs %9.3fs %8s\n' "push 1,000 new objects (median)" "$push_weir" "$push_cgit" "$(ratio "$push_weir" "$push_cgit")"
echo "(C git: git http-backend behind net/http/cgi; load on this machine: $(cut -d' ' -f1-3 /proc/loadavg))"
