#!/usr/bin/env bash
# Weir's Git protocol against C git, same machine, same repo, same run.
#
#   bench/gitproto/run.sh                 2,000 commits editing 300 text files (a few minutes)
#   COMMITS=500 FILES=100 bench/gitproto/run.sh
#   bench/gitproto/run.sh -repo ~/src/go-git   a real repository (its branches
#                                         and tags; HEAD's branch is pushed as main)
#   WEIR_LOG=/tmp/weir.log bench/gitproto/run.sh   keep weir's log (plan and
#                                         pack times of every upload-pack)
#
# The generated history is what deltas are for: every commit edits a few
# lines of a few of the same files. It is made with git fast-import (a real
# repository is mirrored from the path given), then pushed, as of INCR
# (default 50) commits before the tip, into weir (smart HTTP) and into a
# bare repo served by "git http-backend" (through cgishim, a net/http/cgi
# shim: the same HTTP stack shape as weir). Then, over HTTP, each side:
#   initial push   the whole history but the last INCR commits
#   first clone    git clone --bare, once (weir computes and records the
#                  deltas its stored records lack)
#   clone          git clone --bare (median of ROUNDS)
#   fetch          after the last INCR commits are pushed, git fetch into
#                  clones made before (thin pack; median of ROUNDS)
#   blobless clone git clone --filter=blob:none (when the server supports it)
#   no-op fetch    git fetch with nothing new (median of ROUNDS)
#   push 1k        a commit with 1,000 new objects (998 blobs, tree, commit)
# with the bytes of each pack received (GIT_TRACE_PACKFILE), and prints
# weir/C-git ratios (lower is better for weir; 1.00 = same). Every clone
# and fetch is checked with git fsck. The C git repo is "git gc"-ed after
# the initial push (bitmaps and deltas, as a real server).
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
INCR=${INCR:-50}

W=$(mktemp -d /tmp/weir-bench-gitproto.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ -n ${WEIR_LOG:-} ]]; then cp "$W/weir.log" "$WEIR_LOG" || true; fi
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

if [[ -n $REPO ]]; then
	echo "== mirror $REPO"
	# Branches and tags only: a hosting mirror's refs/pull/* and the like
	# are not what a user pushes or clones.
	git init -q --bare "$W/src.git"
	git -C "$W/src.git" fetch -q "$REPO" '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*'
	BRANCH=$(git -C "$REPO" symbolic-ref --short HEAD)
	git -C "$W/src.git" symbolic-ref HEAD "refs/heads/$BRANCH"
	COMMITS=$(git -C "$W/src.git" rev-list --count --all)
	REFS=$(git -C "$W/src.git" for-each-ref | wc -l)
	TITLE="${NAME:-$(basename "$REPO" .git)}: $COMMITS commits, $REFS refs"
else
	echo "== generate $COMMITS commits over $FILES files (fast-import)"
	git init -q --bare "$W/src.git"
	/usr/bin/env python3 - "$COMMITS" "$FILES" <<'PY' | git -C "$W/src.git" fast-import --quiet
import random, sys
commits, files = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
rnd = random.Random(42)
words = [b"alpha", b"beta", b"gamma", b"delta", b"select", b"from", b"where", b"join",
         b"orders", b"customers", b"sum", b"count", b"group", b"by", b"null", b"case"]
def line():
    return b" ".join(rnd.choice(words) for _ in range(rnd.randint(4, 12))) + b"\n"
content = [[line() for _ in range(rnd.randint(40, 200))] for _ in range(files)]
def data(b):
    out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
def path(i):
    return b"src/d%02d/e%02d/file%05d.sql" % (i % 17, i % 5, i)
for c in range(commits):
    out.write(b"commit refs/heads/main\nmark :%d\n" % (c + 1))
    out.write(b"committer Bench <bench@weir.test> %d +0000\n" % (1700000000 + c * 60))
    data(b"commit %d\n" % c)
    if c:
        out.write(b"from :%d\n" % c)
    touched = range(files) if c == 0 else rnd.sample(range(files), 3)
    for i in touched:
        if c:
            body = content[i]
            for _ in range(rnd.randint(1, 4)):
                k = rnd.randrange(len(body))
                op = rnd.random()
                if op < 0.5:
                    body[k] = line()
                elif op < 0.8:
                    body.insert(k, line())
                elif len(body) > 10:
                    del body[k]
        out.write(b"M 100644 inline %s\n" % path(i))
        data(b"".join(content[i]))
PY
	# fast-import deltas each blob against the previous one written: find
	# real deltas, as a user's repo has them.
	git -C "$W/src.git" repack -q -a -d -f
	BRANCH=main
	TITLE="$COMMITS commits, $FILES files"
fi
objects=$(git -C "$W/src.git" rev-list --objects --all | wc -l)
TITLE="$TITLE ($objects objects)"
echo "   $objects objects"
BASE=$(git -C "$W/src.git" rev-parse "$BRANCH~$INCR")

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
ratio() { if [[ $(echo "$2 == 0" | bc) == 1 ]]; then echo -; else printf "%.2f" "$(echo "$1 / $2" | bc -l)"; fi; }
mib() { printf "%.2f MiB" "$(echo "$1 / 1048576" | bc -l)"; }

echo "== initial push ($BRANCH~$INCR)"
git init -q --bare "$W/cgit/bench.git"
git -C "$W/cgit/bench.git" config http.receivepack true
# $BRANCH as main, INCR commits back; with -repo, every other branch and
# tag too, but those that hold the first of those INCR commits: they come
# with the last push, so the fetch has commits to fetch.
specs=("$BASE:refs/heads/main")
later=("$BRANCH:refs/heads/main")
if [[ -n $REPO ]]; then
	next=$(git -C "$W/src.git" rev-list --first-parent --reverse "$BASE..$BRANCH" | awk "NR == 1")
	while read -r ref; do
		[[ $ref == "refs/heads/$BRANCH" ]] && continue
		if git -C "$W/src.git" merge-base --is-ancestor "$next" "$ref^{commit}" 2>/dev/null; then
			later+=("$ref:$ref")
		else
			specs+=("$ref:$ref")
		fi
	done < <(git -C "$W/src.git" for-each-ref --format='%(refname)')
	echo "   ${#specs[@]} refs pushed first, ${#later[@]} with the last $INCR commits"
fi
t=$(now); git -C "$W/src.git" push -q "$WEIR/bench.git" "${specs[@]}"; push_all_weir=$(elapsed "$t")
t=$(now); git -C "$W/src.git" push -q "$CGIT/bench.git" "${specs[@]}"; push_all_cgit=$(elapsed "$t")
git -C "$W/cgit/bench.git" gc -q

# clone URL DEST [ARGS...] -> "seconds bytes"; the clone is fsck-ed.
clone() {
	local url=$1 dest=$2 t s
	shift 2
	rm -rf "$dest" "$W/trace"
	t=$(now)
	GIT_TRACE_PACKFILE=$W/trace git clone -q "$@" "$url" "$dest"
	s=$(elapsed "$t")
	git -C "$dest" fsck --no-progress >/dev/null 2>"$W/fsck.err" || { echo "fsck of $dest failed:"; cat "$W/fsck.err"; exit 1; }
	echo "$s $(stat -c %s "$W/trace")"
}
# fetch DIR -> "seconds bytes"; the repo is fsck-ed.
fetch() {
	local t s
	rm -f "$W/trace"
	t=$(now)
	GIT_TRACE_PACKFILE=$W/trace git -C "$1" fetch -q origin
	s=$(elapsed "$t")
	git -C "$1" fsck --no-progress >/dev/null 2>"$W/fsck.err" || { echo "fsck of $1 failed:"; cat "$W/fsck.err"; exit 1; }
	echo "$s $( [[ -f $W/trace ]] && stat -c %s "$W/trace" || echo 0)"
}
med() { cut -d' ' -f"$1" | median; } # column of "seconds bytes" lines

echo "== first clone"
read -r first_weir first_weir_b < <(clone "$WEIR/bench.git" "$W/clone" --bare)
read -r first_cgit first_cgit_b < <(clone "$CGIT/bench.git" "$W/clone" --bare)

echo "== clone (x$ROUNDS)"
for _ in $(seq "$ROUNDS"); do clone "$WEIR/bench.git" "$W/clone" --bare; done >"$W/cw.txt"
for _ in $(seq "$ROUNDS"); do clone "$CGIT/bench.git" "$W/clone" --bare; done >"$W/cc.txt"
clone_weir=$(med 1 <"$W/cw.txt") clone_weir_b=$(med 2 <"$W/cw.txt")
clone_cgit=$(med 1 <"$W/cc.txt") clone_cgit_b=$(med 2 <"$W/cc.txt")

echo "== fetch of the last $INCR commits (x$ROUNDS)"
for r in $(seq "$ROUNDS"); do
	git clone -q "$WEIR/bench.git" "$W/fw$r"
	git clone -q "$CGIT/bench.git" "$W/fc$r"
done
git -C "$W/src.git" push -q "$WEIR/bench.git" "${later[@]}"
git -C "$W/src.git" push -q "$CGIT/bench.git" "${later[@]}"
for r in $(seq "$ROUNDS"); do fetch "$W/fw$r"; done >"$W/fw.txt"
for r in $(seq "$ROUNDS"); do fetch "$W/fc$r"; done >"$W/fc.txt"
fetch_weir=$(med 1 <"$W/fw.txt") fetch_weir_b=$(med 2 <"$W/fw.txt")
fetch_cgit=$(med 1 <"$W/fc.txt") fetch_cgit_b=$(med 2 <"$W/fc.txt")

echo "== blobless clone"
git -C "$W/cgit/bench.git" config uploadpack.allowFilter true
blobless=""
caps=$(GIT_TRACE_PACKET=1 git -c protocol.version=2 ls-remote "$WEIR/bench.git" 2>&1 >/dev/null || true)
if grep -q 'fetch=.*filter' <<<"$caps"; then
	read -r bl_weir bl_weir_b < <(clone "$WEIR/bench.git" "$W/clone" --bare --filter=blob:none)
	read -r bl_cgit bl_cgit_b < <(clone "$CGIT/bench.git" "$W/clone" --bare --filter=blob:none)
	blobless=yes
fi

echo "== no-op fetch (x$ROUNDS)"
noop() { # DIR -> seconds
	local t
	t=$(now)
	git -C "$1" fetch -q origin
	elapsed "$t"
}
noop_weir=$(for _ in $(seq "$ROUNDS"); do noop "$W/fw1"; done | median)
noop_cgit=$(for _ in $(seq "$ROUNDS"); do noop "$W/fc1"; done | median)

echo "== push of 1,000 new objects (x$ROUNDS)"
git -C "$W/fw1" merge -q --ff-only origin/main
git -C "$W/fc1" merge -q --ff-only origin/main
push1k() { # DIR ROUND -> seconds
	local d=$1 r=$2 t
	mkdir -p "$d/new$r"
	for i in $(seq 998); do echo "round $r file $i $RANDOM" >"$d/new$r/f$i.txt"; done
	git -C "$d" add "new$r" >/dev/null
	git -C "$d" commit -q -m "1k objects, round $r"
	t=$(now)
	git -C "$d" push -q origin HEAD:main
	elapsed "$t"
}
push_weir=$(for r in $(seq "$ROUNDS"); do push1k "$W/fw1" "$r"; done | median)
push_cgit=$(for r in $(seq "$ROUNDS"); do push1k "$W/fc1" "$r"; done | median)

row() { printf '%-34s %9.3fs %9.3fs %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
brow() { printf '%-34s %10s %10s %8s\n' "  pack bytes" "$(mib "$1")" "$(mib "$2")" "$(ratio "$1" "$2")"; }
printf '\n%-34s %10s %10s %8s\n' "$TITLE" weir "C git" ratio
row "initial push (all but last $INCR)" "$push_all_weir" "$push_all_cgit"
row "first clone --bare" "$first_weir" "$first_cgit"
brow "$first_weir_b" "$first_cgit_b"
row "clone --bare (median)" "$clone_weir" "$clone_cgit"
brow "$clone_weir_b" "$clone_cgit_b"
row "fetch of $INCR commits (median)" "$fetch_weir" "$fetch_cgit"
brow "$fetch_weir_b" "$fetch_cgit_b"
if [[ -n $blobless ]]; then
	row "clone --filter=blob:none" "$bl_weir" "$bl_cgit"
	brow "$bl_weir_b" "$bl_cgit_b"
else
	printf '%-34s %s\n' "clone --filter=blob:none" "not measured: weir does not advertise filter yet"
fi
row "no-op fetch (median)" "$noop_weir" "$noop_cgit"
row "push 1,000 new objects (median)" "$push_weir" "$push_cgit"
echo "(over HTTP; C git: git http-backend behind net/http/cgi; load on this machine: $(cut -d' ' -f1-3 /proc/loadavg))"
