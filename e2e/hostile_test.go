package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const zeroID = "0000000000000000000000000000000000000000"

// pushCommand is one "old new ref" line of a receive-pack request.
type pushCommand struct{ old, new, ref string }

func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// rawPush sends one receive-pack request over smart HTTP without a Git
// client: the commands with caps, a flush, then pack. It returns the HTTP
// status and the report-status lines (side-band is not asked for).
func rawPush(t *testing.T, url string, cmds []pushCommand, caps string, pack []byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	for i, c := range cmds {
		line := c.old + " " + c.new + " " + c.ref
		if i == 0 {
			line += "\x00" + caps
		}
		body.WriteString(pkt(line + "\n"))
	}
	body.WriteString("0000")
	body.Write(pack)
	resp, err := http.Post(url+"/git-receive-pack", "application/x-git-receive-pack-request", &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, decodePkts(b)
}

// decodePkts turns pkt-lines into text, one payload per line.
func decodePkts(b []byte) string {
	var out strings.Builder
	for len(b) >= 4 {
		n, err := strconv.ParseUint(string(b[:4]), 16, 16)
		if err != nil {
			out.Write(b)
			break
		}
		if n < 4 {
			b = b[4:]
			continue
		}
		if int(n) > len(b) {
			out.Write(b[4:])
			break
		}
		out.Write(b[4:n])
		b = b[n:]
	}
	return out.String()
}

// emptyPack is a valid pack with no objects.
func emptyPack() []byte {
	var p bytes.Buffer
	p.WriteString("PACK")
	binary.Write(&p, binary.BigEndian, uint32(2))
	binary.Write(&p, binary.BigEndian, uint32(0))
	sum := sha1.Sum(p.Bytes())
	p.Write(sum[:])
	return p.Bytes()
}

// hashObject writes data as an object of type typ into the repo at dir
// without any checks (hash-object --literally) and returns its id.
func hashObject(t *testing.T, dir, typ string, data []byte) string {
	t.Helper()
	cmd := exec.Command("git", "hash-object", "--literally", "-w", "-t", typ, "--stdin")
	cmd.Dir = dir
	cmd.Env = gitEnv()
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hash-object: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// rawTree builds a tree object's bytes from (mode, name, id) entries, in
// the order given: no sorting, no checks.
func rawTree(t *testing.T, entries ...[3]string) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, e := range entries {
		id, err := hex.DecodeString(e[2])
		if err != nil || len(id) != 20 {
			t.Fatalf("bad id %q", e[2])
		}
		b.WriteString(e[0] + " " + e[1] + "\x00")
		b.Write(id)
	}
	return b.Bytes()
}

// packObjects packs the objects reachable from tip but not from base.
func packObjects(t *testing.T, dir, tip, base string) []byte {
	t.Helper()
	revs := tip + "\n"
	if base != "" {
		revs += "^" + base + "\n"
	}
	cmd := exec.Command("git", "pack-objects", "--stdout", "--revs", "-q")
	cmd.Dir = dir
	cmd.Env = gitEnv()
	cmd.Stdin = strings.NewReader(revs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pack-objects: %v\n%s", err, stderr.String())
	}
	return out
}

// TestHostilePushes: trees and commits that git fsck refuses are refused
// on push with the check named; no ref moves and the objects cannot be
// fetched afterwards, not even by id.
func TestHostilePushes(t *testing.T) {
	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 1)
	url := s.URL("hostile")
	git(t, work, "remote", "add", "origin", url)
	git(t, work, "push", "-q", "origin", "main")
	head := revParse(t, work, "HEAD")
	blob := hashObject(t, work, "blob", []byte("#!/bin/sh\necho pwned\n"))
	emptyTree := hashObject(t, work, "tree", nil)
	subtree := hashObject(t, work, "tree", rawTree(t, [3]string{"100644", "x", blob}))

	for _, tc := range []struct {
		name  string
		tree  func() string
		check string
	}{
		{"dotgit", func() string { return hashObject(t, work, "tree", rawTree(t, [3]string{"100644", ".git", blob})) }, "hasDotgit"},
		{"dotgit-case", func() string {
			return hashObject(t, work, "tree", rawTree(t, [3]string{"040000", ".GiT", subtree}))
		}, "hasDotgit"},
		{"dotgit-dir", func() string { return hashObject(t, work, "tree", rawTree(t, [3]string{"40000", ".git", subtree})) }, "hasDotgit"},
		{"dotdot", func() string { return hashObject(t, work, "tree", rawTree(t, [3]string{"40000", "..", emptyTree})) }, "hasDotdot"},
		{"zero-padded-mode", func() string {
			return hashObject(t, work, "tree", rawTree(t, [3]string{"040000", "sub", subtree}))
		}, "zeroPaddedFilemode"},
		{"ntfs-short-name", func() string { return hashObject(t, work, "tree", rawTree(t, [3]string{"100644", "git~1", blob})) }, "hasDotgit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := tc.tree()
			commitOut := git(t, work, "commit-tree", tree, "-p", head, "-m", "evil "+tc.name)
			commit := strings.TrimSpace(commitOut)
			ref := "refs/heads/evil-" + tc.name
			git(t, work, "update-ref", ref, commit)
			before := lsRemote(t, url)
			out := gitFails(t, work, "push", "origin", ref)
			if !strings.Contains(out, tc.check) {
				t.Fatalf("push of %s: output does not name %s:\n%s", tc.name, tc.check, out)
			}
			if after := lsRemote(t, url); !equalMaps(before, after) {
				t.Fatalf("refs moved:\nbefore %v\nafter  %v", before, after)
			}
			// Not fetchable by id (protocol v2 want).
			clone := filepath.Join(t.TempDir(), "c")
			git(t, "", "clone", "-q", url, clone)
			for _, id := range []string{commit, tree} {
				out, err := gitRun(clone, nil, "-c", "protocol.version=2", "fetch", "origin", id)
				if err == nil {
					t.Fatalf("fetch of refused object %s succeeded:\n%s", id, out)
				}
				if !strings.Contains(out, "not our ref") {
					t.Errorf("fetch of refused object %s: %s", id, out)
				}
				if _, err := gitRun(clone, nil, "cat-file", "-e", id); err == nil {
					t.Fatalf("refused object %s is in the clone", id)
				}
			}
		})
	}
}

// dirSize is the disk usage of dir in bytes (allocated blocks, as du).
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQuarantineRefusedPushesLeaveNothing: 1,000 refused pushes, each
// carrying 64 KiB of incompressible data plus a tree fsck refuses, do not
// grow the database. The pushes are raw smart-HTTP requests (a Git client
// per push would take minutes); the pack is made by C git.
func TestQuarantineRefusedPushesLeaveNothing(t *testing.T) {
	const pushes = 1000
	data := t.TempDir()
	s := startWeir(t, data)
	work := newWorkRepo(t, 1)
	url := s.URL("quarantine")
	git(t, work, "push", "-q", url, "main")
	head := revParse(t, work, "HEAD")

	junk := make([]byte, 64<<10)
	rand.Read(junk)
	big := hashObject(t, work, "blob", junk)
	tree := hashObject(t, work, "tree", rawTree(t, [3]string{"100644", ".git", big}))
	commit := strings.TrimSpace(git(t, work, "commit-tree", tree, "-p", head, "-m", "evil"))
	pack := packObjects(t, work, commit, head)
	cmds := []pushCommand{{zeroID, commit, "refs/heads/evil"}}

	// Settle: one refused push first, so one-time allocations (WAL, caches)
	// are not counted as growth.
	if _, report := rawPush(t, url, cmds, "report-status", pack); !strings.Contains(report, "ng refs/heads/evil") {
		t.Fatalf("first refused push:\n%s", report)
	}
	before := dirSize(t, filepath.Join(data, "pebble"))
	for i := 0; i < pushes; i++ {
		status, report := rawPush(t, url, cmds, "report-status", pack)
		if status != 200 || !strings.Contains(report, "ng refs/heads/evil") || !strings.Contains(report, "hasDotgit") {
			t.Fatalf("push %d: %d\n%s", i, status, report)
		}
	}
	after := dirSize(t, filepath.Join(data, "pebble"))
	sent := int64(pushes) * int64(len(pack))
	t.Logf("%d refused pushes, %d bytes sent; pebble dir %d -> %d bytes (%+d)", pushes, sent, before, after, after-before)
	if growth := after - before; growth > sent/100 {
		t.Fatalf("database grew by %d bytes over %d refused pushes (%d bytes sent)", growth, pushes, sent)
	}
	if _, ok := lsRemote(t, url)["refs/heads/evil"]; ok {
		t.Fatal("refs/heads/evil exists")
	}
	// Also after a restart (the WAL replays nothing of them).
	s.Restart()
	url = s.URL("quarantine")
	clone := filepath.Join(t.TempDir(), "c")
	git(t, "", "clone", "-q", url, clone)
	if out, err := gitRun(clone, nil, "fetch", "origin", big); err == nil {
		t.Fatalf("refused blob fetchable after restart:\n%s", out)
	}
}

// TestCrashDuringPush: kill -9 the server in the middle of a 50 MB push;
// after a restart the refs hold their old values, a fresh clone passes
// git fsck, and the same push then succeeds.
func TestCrashDuringPush(t *testing.T) {
	data := t.TempDir()
	s := startWeir(t, data)
	work := newWorkRepo(t, 2)
	url := s.URL("crash")
	git(t, work, "remote", "add", "origin", url)
	git(t, work, "push", "-q", "origin", "main")
	old := revParse(t, work, "HEAD")

	buf := make([]byte, 1<<20)
	for i := 0; i < 50; i++ {
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(work, fmt.Sprintf("blob%02d.bin", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "-c", "core.compression=0", "add", ".")
	git(t, work, "commit", "-q", "-m", "50 MB of random blobs")
	newTip := revParse(t, work, "HEAD")
	start := time.Now()

	// Push, and kill the server once the client has written a third of
	// the pack (pack-objects blocks on the pipe, so its progress follows
	// what the server has read).
	// No deflate, no delta search: compressing 50 MB of random bytes costs the
	// client seconds and proves nothing.
	cmd := exec.Command("git", "-c", "pack.compression=0", "-c", "pack.window=0", "push", "--progress", "origin", "main")
	cmd.Dir = work
	cmd.Env = gitEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen bytes.Buffer
	killed := false
	chunk := make([]byte, 4096)
	for {
		n, err := stderr.Read(chunk)
		seen.Write(chunk[:n])
		if p := writingPercent(seen.String()); !killed && p >= 30 {
			s.Kill()
			killed = true
			t.Logf("server killed after %v at %d%% written", time.Since(start).Round(time.Millisecond), p)
		}
		if err != nil {
			break
		}
	}
	pushErr := cmd.Wait()
	if !killed {
		t.Skipf("push finished before it could be interrupted (no progress seen):\n%s", seen.String())
	}
	if pushErr == nil {
		t.Fatalf("push succeeded although the server was killed:\n%s", seen.String())
	}

	s.Restart()
	t.Logf("restarted at %v", time.Since(start).Round(time.Millisecond))
	url = s.URL("crash")
	refs := lsRemote(t, url)
	if refs["refs/heads/main"] != old {
		t.Fatalf("after crash main = %s, want the old %s", refs["refs/heads/main"], old)
	}
	clone := filepath.Join(t.TempDir(), "c")
	git(t, "", "clone", "-q", url, clone)
	if out := git(t, clone, "fsck", "--full", "--strict"); strings.TrimSpace(out) != "" {
		t.Fatalf("fsck after crash:\n%s", out)
	}
	t.Logf("fresh clone checked at %v", time.Since(start).Round(time.Millisecond))
	git(t, work, "remote", "set-url", "origin", url)
	git(t, work, "-c", "pack.compression=0", "-c", "pack.window=0", "push", "-q", "origin", "main")
	t.Logf("push after restart done at %v", time.Since(start).Round(time.Millisecond))
	if got := lsRemote(t, url)["refs/heads/main"]; got != newTip {
		t.Fatalf("push after restart: main = %s, want %s", got, newTip)
	}
}

// writingPercent returns the last "Writing objects: NN%" in git's progress.
func writingPercent(s string) int {
	i := strings.LastIndex(s, "Writing objects:")
	if i < 0 {
		return -1
	}
	rest := strings.TrimSpace(s[i+len("Writing objects:"):])
	j := strings.IndexByte(rest, '%')
	if j < 0 {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest[:j]))
	if err != nil {
		return -1
	}
	return n
}
