package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCloneFetchPush: push creates a repo, clone, fetch after new commits,
// push from the clone, over each transport and each protocol version.
func TestCloneFetchPush(t *testing.T) {
	s := startWeir(t, t.TempDir())
	for _, tr := range transports {
		for _, proto := range []string{"0", "2"} {
			t.Run(tr.name+"/v"+proto, func(t *testing.T) {
				repo := "demo-" + tr.name + "-v" + proto
				url := tr.url(s, repo)
				pv := "protocol.version=" + proto
				work := newWorkRepo(t, 3)
				git(t, work, "remote", "add", "origin", url)
				out := git(t, work, "-c", pv, "push", "origin", "main")
				if !strings.Contains(out, "* [new branch]      main -> main") {
					t.Fatalf("first push output:\n%s", out)
				}
				clone := filepath.Join(t.TempDir(), "clone")
				git(t, "", "-c", pv, "clone", "-q", url, clone)
				if got, want := revParse(t, clone, "HEAD"), revParse(t, work, "HEAD"); got != want {
					t.Fatalf("clone HEAD %s, want %s", got, want)
				}
				if out := git(t, clone, "fsck", "--full", "--strict"); strings.TrimSpace(out) != "" {
					t.Fatalf("fsck of the clone:\n%s", out)
				}
				if head := strings.TrimSpace(git(t, clone, "symbolic-ref", "HEAD")); head != "refs/heads/main" {
					t.Fatalf("clone HEAD -> %s", head)
				}

				// New commits, then fetch.
				commitFile(t, work, "more/a.txt", "a\n")
				tip := commitFile(t, work, "more/b.txt", "b\n")
				git(t, work, "-c", pv, "push", "-q", "origin", "main")
				git(t, clone, "-c", pv, "fetch", "-q", "origin")
				if got := revParse(t, clone, "origin/main"); got != tip {
					t.Fatalf("after fetch origin/main = %s, want %s", got, tip)
				}
				// A no-op fetch.
				git(t, clone, "-c", pv, "fetch", "-q", "origin")

				// Push a new branch from the clone; the other side sees it.
				git(t, clone, "checkout", "-q", "-b", "feature", "origin/main")
				ftip := commitFile(t, clone, "feature.txt", "f\n")
				git(t, clone, "-c", pv, "push", "-q", "origin", "feature")
				refs := lsRemote(t, url)
				if refs["refs/heads/feature"] != ftip || refs["refs/heads/main"] != tip {
					t.Fatalf("ls-remote after pushes: %v", refs)
				}
				if refs["HEAD"] != tip {
					t.Fatalf("HEAD advertised as %s, want %s", refs["HEAD"], tip)
				}
			})
		}
	}
}

// TestAtomicPushStaleRef: with --atomic, one stale ref fails the whole
// push; nothing moves and both refs are reported.
func TestAtomicPushStaleRef(t *testing.T) {
	s := startWeir(t, t.TempDir())
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			url := tr.url(s, "atomic-"+tr.name)
			work := newWorkRepo(t, 1)
			git(t, work, "branch", "b2")
			git(t, work, "remote", "add", "origin", url)
			git(t, work, "push", "-q", "origin", "main", "b2")

			// Someone else moves b2.
			other := filepath.Join(t.TempDir(), "other")
			git(t, "", "clone", "-q", url, other)
			git(t, other, "checkout", "-q", "b2")
			commitFile(t, other, "theirs.txt", "theirs\n")
			git(t, other, "push", "-q", "origin", "b2")
			before := lsRemote(t, url)

			// We move main (fine) and b2 (stale).
			commitFile(t, work, "ours-main.txt", "ours\n")
			git(t, work, "checkout", "-q", "b2")
			commitFile(t, work, "ours-b2.txt", "ours\n")
			out := gitFails(t, work, "push", "--atomic", "origin", "main", "b2")
			// Over HTTP git reports only the failing ref itself
			// ("atomic push failed for ref refs/heads/b2").
			wants := []string{"b2 -> b2 (fetch first)", "atomic push failed"}
			if tr.name == "ssh" {
				wants = append(wants, "main -> main (atomic push failed)")
			}
			for _, want := range wants {
				if !strings.Contains(out, want) {
					t.Errorf("atomic push output lacks %q:\n%s", want, out)
				}
			}
			if after := lsRemote(t, url); !equalMaps(before, after) {
				t.Fatalf("refs moved after a failed atomic push:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// git checks staleness itself before sending; make the server do it:
	// a raw atomic push whose old value for b2 is stale.
	t.Run("server-side", func(t *testing.T) {
		url := s.URL("atomic-http")
		before := lsRemote(t, url)
		main := before["refs/heads/main"]
		stale := main // b2's value before "other" moved it
		cmds := []pushCommand{{zeroID, main, "refs/heads/b1"}, {stale, main, "refs/heads/b2"}}
		status, report := rawPush(t, url, cmds, "report-status atomic", emptyPack())
		if status != 200 || !strings.Contains(report, "ng refs/heads/b2 ") || !strings.Contains(report, "ng refs/heads/b1 ") {
			t.Fatalf("raw atomic push: %d\n%s", status, report)
		}
		if after := lsRemote(t, url); !equalMaps(before, after) {
			t.Fatalf("refs moved after a failed atomic push:\nbefore %v\nafter  %v", before, after)
		}
		// Without atomic the good ref lands and the stale one is refused.
		_, report = rawPush(t, url, cmds, "report-status", emptyPack())
		if !strings.Contains(report, "ok refs/heads/b1") || !strings.Contains(report, "ng refs/heads/b2 ") {
			t.Fatalf("raw non-atomic push:\n%s", report)
		}
		if after := lsRemote(t, url); after["refs/heads/b1"] != main || after["refs/heads/b2"] != before["refs/heads/b2"] {
			t.Fatalf("after non-atomic push: %v", after)
		}
	})
}

// TestForcePushAndDeleteRefusedOnMain: main is protected; other branches
// take force pushes and deletes.
func TestForcePushAndDeleteRefusedOnMain(t *testing.T) {
	s := startWeir(t, t.TempDir())
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			url := tr.url(s, "protect-"+tr.name)
			work := newWorkRepo(t, 2)
			git(t, work, "branch", "topic")
			git(t, work, "remote", "add", "origin", url)
			git(t, work, "push", "-q", "origin", "main", "topic")
			before := lsRemote(t, url)

			git(t, work, "commit", "-q", "--amend", "-m", "rewritten")
			out := gitFails(t, work, "push", "--force", "origin", "main")
			if !strings.Contains(out, "protected branch: force push refused") {
				t.Fatalf("force push to main:\n%s", out)
			}
			out = gitFails(t, work, "push", "origin", "--delete", "main")
			if !strings.Contains(out, "protected branch: deletion refused") {
				t.Fatalf("delete of main:\n%s", out)
			}
			if after := lsRemote(t, url); after["refs/heads/main"] != before["refs/heads/main"] {
				t.Fatalf("main moved: %s -> %s", before["refs/heads/main"], after["refs/heads/main"])
			}

			// topic is not protected: force push and delete work.
			git(t, work, "push", "-q", "--force", "origin", "HEAD:topic")
			if got := lsRemote(t, url)["refs/heads/topic"]; got != revParse(t, work, "HEAD") {
				t.Fatalf("forced topic = %s", got)
			}
			git(t, work, "push", "-q", "origin", "--delete", "topic")
			if _, ok := lsRemote(t, url)["refs/heads/topic"]; ok {
				t.Fatal("topic still there after delete")
			}
		})
	}
}

// TestShallowClone: --depth 1 brings one commit, and deepening works.
func TestShallowClone(t *testing.T) {
	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 5)
	url := s.URL("shallow")
	git(t, work, "push", "-q", url, "main")
	for _, tr := range transports {
		for _, proto := range []string{"0", "2"} {
			t.Run(tr.name+"/v"+proto, func(t *testing.T) {
				pv := "protocol.version=" + proto
				clone := filepath.Join(t.TempDir(), "c")
				git(t, "", "-c", pv, "clone", "-q", "--depth", "1", tr.url(s, "shallow"), clone)
				if n := strings.TrimSpace(git(t, clone, "rev-list", "--count", "HEAD")); n != "1" {
					t.Fatalf("shallow clone has %s commits", n)
				}
				if got, want := revParse(t, clone, "HEAD"), revParse(t, work, "HEAD"); got != want {
					t.Fatalf("HEAD %s, want %s", got, want)
				}
				git(t, clone, "-c", pv, "fetch", "-q", "--depth", "3")
				if n := strings.TrimSpace(git(t, clone, "rev-list", "--count", "HEAD")); n != "3" {
					t.Fatalf("after --depth 3: %s commits", n)
				}
				git(t, clone, "-c", pv, "fetch", "-q", "--unshallow")
				if n := strings.TrimSpace(git(t, clone, "rev-list", "--count", "HEAD")); n != "5" {
					t.Fatalf("after --unshallow: %s commits", n)
				}
			})
		}
	}
}

// TestProtocolV2Clone: the client really speaks v2 with us (not a silent
// fallback to v0), over both transports.
func TestProtocolV2Clone(t *testing.T) {
	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 2)
	git(t, work, "push", "-q", s.URL("v2"), "main")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			clone := filepath.Join(t.TempDir(), "c")
			out := gitWith(t, "", []string{"GIT_TRACE_PACKET=1"}, "-c", "protocol.version=2", "clone", tr.url(s, "v2"), clone)
			if !strings.Contains(out, "< version 2") || !strings.Contains(out, "> command=fetch") {
				t.Fatalf("no v2 exchange in the packet trace:\n%s", tail(out, 3000))
			}
			if got, want := revParse(t, clone, "HEAD"), revParse(t, work, "HEAD"); got != want {
				t.Fatalf("HEAD %s, want %s", got, want)
			}
		})
	}
}

// TestUnknownRepoAndBadNames: clear errors, nothing created.
func TestUnknownRepoAndBadNames(t *testing.T) {
	s := startWeir(t, t.TempDir())
	for _, tr := range transports {
		out := gitFails(t, "", "clone", tr.url(s, "nope"), filepath.Join(t.TempDir(), "c"))
		if !strings.Contains(strings.ToLower(out), "not found") {
			t.Errorf("%s: clone of a missing repo:\n%s", tr.name, out)
		}
	}
	out := gitFails(t, "", "ls-remote", s.HTTP+"/-evil.git")
	if !strings.Contains(out, "400") {
		t.Errorf("bad repo name over HTTP:\n%s", out)
	}
	out = gitFails(t, "", "ls-remote", "ssh://git@127.0.0.1:"+s.SSHPort+"/a/../b.git")
	if !strings.Contains(out, "invalid repository name") {
		t.Errorf("bad repo name over SSH:\n%s", out)
	}
	// Dumb HTTP is refused with a message saying so.
	resp := httpGet(t, s.HTTP+"/demo.git/info/refs", "", "")
	if resp.status != 403 || !strings.Contains(resp.body, "dumb HTTP protocol is not supported") {
		t.Errorf("dumb info/refs: %d %q", resp.status, resp.body)
	}
	resp = httpGet(t, s.HTTP+"/demo.git/HEAD", "", "")
	if resp.status != 404 || !strings.Contains(resp.body, "dumb HTTP") {
		t.Errorf("dumb HEAD: %d %q", resp.status, resp.body)
	}
}

// TestServeHelpListsFlags: every knob is in --help.
func TestServeHelpListsFlags(t *testing.T) {
	cmd := exec.Command(weirBin, "serve", "--help")
	cmd.Env = append(os.Environ(), "AWS_SECRET_ACCESS_KEY=env-secret-never-printed")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("weir serve --help: %v\n%s", err, out)
	}
	for _, f := range []string{"-data", "-http", "-ssh", "-authorized-keys", "-protected", "-max-pack-bytes", "-max-object-bytes", "-assume-remote", "-log-level", "./weir-data", "127.0.0.1:7480", "127.0.0.1:7422",
		"-node-timeout", "-node-memory-bytes", "-node-pids", "-node-cpus", "-node-output-bytes", "-node-tmp-bytes", "-node-open-files", "-node-parallel", "-runtime",
		"-runs", "-run-queue", "-run-policy", "-node-pool-cpus", "-node-pool-memory-mb", "-node-default-cpus", "-node-default-memory-mb", "-runs-history",
		"-warehouse", "-s3-endpoint", "-s3-region", "-s3-path-style", "-s3-access-key-id", "-s3-secret-access-key", "-iceberg-vend-credentials", "-s3", "127.0.0.1:7424", "-s3-url", "-s3-credential-ttl"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("weir serve --help lacks %q", f)
		}
	}
	if strings.Contains(string(out), "env-secret-never-printed") {
		t.Errorf("weir serve --help prints the secret key from the environment:\n%s", out)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
