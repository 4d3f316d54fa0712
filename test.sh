#!/usr/bin/env bash
# Weir's whole check: install what the tests need (on a fresh Debian), then
# go vet, gofmt, go build, and the tests: -race on the concurrent packages
# (refs, gitserver, catalog, hooks, gc), plain go test on everything else, end-to-end included.
#
#   ./test.sh              everything (well under 20 minutes on 2 cores)
#   SKIP_APT=1 ./test.sh   never touch apt
#   GO_TEST_FLAGS=-v ./test.sh
set -uo pipefail
cd "$(dirname "$0")"

# Debian packages the tests use, each with a probe that says it is present.
#   git                C git 2.39: e2e client, pack fixtures
#   openssh-client     ssh, ssh-keygen: e2e over SSH
#   python3-dulwich    second Git implementation in e2e (/usr/bin/python3)
#   python3-pygit2     libgit2 from Python, for tests that use a third implementation
#   runc               bench/sandbox compares against the runc CLI
#   libseccomp-dev     exec sandboxes (libcontainer seccomp, cgo)
#   iproute2           ip: network checks in sandbox tests
#   gcc, libc6-dev     cgo (DuckDB, libcontainer nsenter)
#   pkg-config         cgo flags for libseccomp
#   procps, coreutils  ps, du
#   mmdebstrap         weir runtime build (the pandas runtime of the runtime tests)
#   libjgit-java       JGit 4.11 with JSch: a fourth Git implementation, over SSH
#   default-jdk-headless  javac, to compile the JGit test's driver
#   awscli             Debian's AWS CLI (/usr/bin/aws): a client of the S3 endpoint
need=()
probe() { # probe PACKAGE COMMAND...
	local pkg=$1
	shift
	if ! "$@" >/dev/null 2>&1; then need+=("$pkg"); fi
}
probe git command -v git
probe openssh-client command -v ssh-keygen
probe python3-dulwich /usr/bin/python3 -c 'import dulwich'
probe python3-pygit2 /usr/bin/python3 -c 'import pygit2'
probe runc command -v runc
probe libseccomp-dev dpkg -s libseccomp-dev
probe iproute2 command -v ip
probe gcc command -v gcc
probe libc6-dev dpkg -s libc6-dev
probe pkg-config command -v pkg-config
probe procps command -v ps
probe mmdebstrap command -v mmdebstrap
probe libjgit-java test -f /usr/share/java/org.eclipse.jgit.jar
probe default-jdk-headless command -v javac
probe awscli test -x /usr/bin/aws
probe chromium command -v chromium

if ((${#need[@]})) && [[ -z ${SKIP_APT:-} ]]; then
	echo "== apt-get install ${need[*]}"
	if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO=sudo; else SUDO=; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
		{ echo "apt-get install failed" >&2; exit 1; }
fi

if ! command -v go >/dev/null; then
	for d in /usr/local/go/bin "$HOME/go/bin" /usr/lib/go/bin; do
		[[ -x $d/go ]] && PATH=$d:$PATH && break
	done
fi
command -v go >/dev/null || { echo "go not found: install Go 1.26 (https://go.dev/dl/)" >&2; exit 1; }
echo "== $(go version)"

start=$SECONDS
fail=0
step() { # step NAME COMMAND...: run, remember failure, keep going
	local name=$1
	shift
	echo "== $name"
	if ! "$@"; then
		echo "!! $name FAILED"
		fail=1
	fi
}

gofmt_check() {
	local files
	files=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
	if [[ -n $files ]]; then
		echo "not gofmt-clean:"
		echo "$files"
		return 1
	fi
}

step "go vet ./..." go vet ./...
step "gofmt" gofmt_check
step "go build ./..." go build ./...
if ((fail)); then
	echo "== FAIL (vet/gofmt/build) after $((SECONDS - start))s"
	exit 1
fi

# The pandas runtime (python3-pandas, python3-numpy) of the runtime tests,
# built once with weir runtime build and kept in a cache; building the same
# inputs again is a no-op, so only a change of inputs or of the build
# format rebuilds it (about 3.5 minutes and 250 MB from the Debian mirror).
# The tests find it in WEIR_TEST_RUNTIME_PANDAS (set it to skip the build)
# and skip, saying why, where it could not be built.
runtime_cache=${WEIR_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weir-test}
build_pandas_runtime() {
	mkdir -p "$runtime_cache/bin" || return 1
	go build -o "$runtime_cache/bin/" ./cmd/weir || return 1
	local out
	if ! out=$("$runtime_cache/bin/weir" runtime build pandas --debian python3-pandas,python3-numpy \
		--data "$runtime_cache/data" 2>"$runtime_cache/build.log"); then
		tail -n 20 "$runtime_cache/build.log"
		return 1
	fi
	echo "$out"
	WEIR_TEST_RUNTIME_PANDAS=$(awk '$1 == "rootfs" { print $2 }' <<<"$out")
	export WEIR_TEST_RUNTIME_PANDAS
}
if [[ -z ${WEIR_TEST_RUNTIME_PANDAS:-} ]]; then
	echo "== weir runtime build pandas (cache: $runtime_cache)"
	if [[ $(id -u) -ne 0 ]] || ! command -v mmdebstrap >/dev/null; then
		echo "!! not root or no mmdebstrap: the runtime tests will skip"
	elif ! build_pandas_runtime; then
		echo "!! the pandas runtime could not be built (above): the runtime tests will skip"
	fi
fi

# -count=1: never a cached result; e2e builds cmd/weir itself, so go test's
# cache cannot see that the server's sources changed.
# -race where goroutines share state; everything else without it (the
# race build of the container and e2e packages costs minutes and finds
# nothing the plain run does not).
# The timeouts are a hang guard, not a budget: a quiet run of each step
# takes a few minutes, and a machine shared with other work (load 20+ on
# two cores) stretches the race packages past 10 minutes.
race_pkgs=(./refs/... ./gitserver/... ./catalog/... ./hooks/... ./gc/...)
mapfile -t rest < <(go list ./... | grep -v -E '^github.com/weir-dev/weir/(refs|gitserver|catalog|hooks|gc)(/|$)')
flags=(${GO_TEST_FLAGS:-})
step "go test -race ${race_pkgs[*]}" go test -race -count=1 -timeout 25m "${flags[@]}" "${race_pkgs[@]}"
step "go test (everything else, e2e included)" go test -count=1 -timeout 25m "${flags[@]}" "${rest[@]}"

if ((fail)); then
	echo "== FAIL after $((SECONDS - start))s"
	exit 1
fi
echo "== PASS after $((SECONDS - start))s"
