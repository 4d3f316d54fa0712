package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// commitAt commits name with content in dir, author and committer dated
// at the Unix time ts, and returns the commit.
func commitAt(t *testing.T, dir, name, content string, ts int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	date := fmt.Sprintf("@%d +0000", ts)
	env := []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}
	gitWith(t, dir, env, "add", name)
	gitWith(t, dir, env, "commit", "-q", "-m", "change "+name)
	return revParse(t, dir, "HEAD")
}

// shallowFile returns the sorted commits of dir's .git/shallow.
func shallowFile(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".git", "shallow"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	l := strings.Fields(string(b))
	sort.Strings(l)
	return l
}

func commitCount(t *testing.T, dir, rev string) string {
	t.Helper()
	return strings.TrimSpace(git(t, dir, "rev-list", "--count", rev))
}

// TestShallowSinceNotRelative: clone --shallow-since, --shallow-exclude and
// fetch --deepen, --shallow-since on a shallow clone, over v0 and v2, each
// transport; the shallow boundary and the history the client ends with
// are exactly those asked for, and a request that selects nothing is
// refused with git's message.
func TestShallowSinceNotRelative(t *testing.T) {
	s := startWeir(t, t.TempDir())
	const day = 86400
	base := int64(1700000000)
	work := filepath.Join(t.TempDir(), "work")
	git(t, "", "init", "-q", work)
	var c []string
	for i := 0; i < 6; i++ {
		c = append(c, commitAt(t, work, fmt.Sprintf("f%d.txt", i), fmt.Sprintf("v%d\n", i), base+int64(i)*day))
	}
	git(t, work, "tag", "old", c[2])
	git(t, work, "tag", "-a", "-m", "annotated", "oldann", c[1])
	url0 := s.URL("shallow")
	git(t, work, "push", "-q", url0, "main", "--tags")

	for _, tr := range transports {
		for _, proto := range []string{"0", "2"} {
			t.Run(tr.name+"/v"+proto, func(t *testing.T) {
				url := tr.url(s, "shallow")
				pv := "protocol.version=" + proto
				tmp := t.TempDir()

				// Since the day of c[3]: c[3] .. c[5], c[3] the boundary.
				since := filepath.Join(tmp, "since")
				git(t, "", "-c", pv, "clone", "-q", "--shallow-since="+fmt.Sprint(base+3*day), url, since)
				if got := commitCount(t, since, "HEAD"); got != "3" {
					t.Fatalf("--shallow-since: %s commits, want 3", got)
				}
				if got := shallowFile(t, since); fmt.Sprint(got) != fmt.Sprint([]string{c[3]}) {
					t.Fatalf("--shallow-since: shallow %v, want [%s]", got, c[3])
				}
				// Deepen by 2 below the boundary: c[1] is the new one.
				git(t, since, "-c", pv, "fetch", "-q", "--deepen=2")
				if got := commitCount(t, since, "HEAD"); got != "5" {
					t.Fatalf("--deepen=2: %s commits, want 5", got)
				}
				if got := shallowFile(t, since); fmt.Sprint(got) != fmt.Sprint([]string{c[1]}) {
					t.Fatalf("--deepen=2: shallow %v, want [%s]", got, c[1])
				}
				if out := git(t, since, "fsck"); strings.Contains(out, "error") {
					t.Fatalf("fsck after --deepen:\n%s", out)
				}

				// Excluding the tag "old" (c[2]) and the annotated oldann.
				for _, ex := range []string{"old", "refs/tags/old"} {
					dir := filepath.Join(tmp, "exclude-"+strings.ReplaceAll(ex, "/", "-"))
					git(t, "", "-c", pv, "clone", "-q", "--shallow-exclude="+ex, url, dir)
					if got := commitCount(t, dir, "HEAD"); got != "3" {
						t.Fatalf("--shallow-exclude=%s: %s commits, want 3", ex, got)
					}
					if got := shallowFile(t, dir); fmt.Sprint(got) != fmt.Sprint([]string{c[3]}) {
						t.Fatalf("--shallow-exclude=%s: shallow %v, want [%s]", ex, got, c[3])
					}
				}
				dir := filepath.Join(tmp, "exclude-ann")
				git(t, "", "-c", pv, "clone", "-q", "--shallow-exclude=oldann", url, dir)
				if got := commitCount(t, dir, "HEAD"); got != "4" {
					t.Fatalf("--shallow-exclude=oldann: %s commits, want 4", got)
				}

				// A depth-1 clone deepened by date: the old boundary is
				// unshallowed, the new one is c[2].
				d1 := filepath.Join(tmp, "d1")
				git(t, "", "-c", pv, "clone", "-q", "--depth=1", url, d1)
				if got := shallowFile(t, d1); fmt.Sprint(got) != fmt.Sprint([]string{c[5]}) {
					t.Fatalf("--depth=1: shallow %v", got)
				}
				git(t, d1, "-c", pv, "fetch", "-q", "--shallow-since="+fmt.Sprint(base+2*day))
				if got := commitCount(t, d1, "HEAD"); got != "4" {
					t.Fatalf("fetch --shallow-since: %s commits, want 4", got)
				}
				if got := shallowFile(t, d1); fmt.Sprint(got) != fmt.Sprint([]string{c[2]}) {
					t.Fatalf("fetch --shallow-since: shallow %v, want [%s]", got, c[2])
				}
				// --deepen=1 of a depth-1 clone: two commits.
				d2 := filepath.Join(tmp, "d2")
				git(t, "", "-c", pv, "clone", "-q", "--depth=1", url, d2)
				git(t, d2, "-c", pv, "fetch", "-q", "--deepen=1")
				if got := commitCount(t, d2, "HEAD"); got != "2" {
					t.Fatalf("--depth=1 then --deepen=1: %s commits, want 2", got)
				}

				// Nothing that new, and a ref that does not exist.
				out := gitFails(t, "", "-c", pv, "clone", "-q", "--shallow-since="+fmt.Sprint(base+30*day), url, filepath.Join(tmp, "none"))
				if !strings.Contains(out, "no commits selected for shallow requests") {
					t.Fatalf("clone --shallow-since in the future:\n%s", out)
				}
				out = gitFails(t, "", "-c", pv, "clone", "-q", "--shallow-exclude=nosuchref", url, filepath.Join(tmp, "none2"))
				if !strings.Contains(out, "deepen-not is not a ref: nosuchref") {
					t.Fatalf("clone --shallow-exclude=nosuchref:\n%s", out)
				}
			})
		}
	}
}

// missingObjects lists the objects of dir's history that it lacks.
func missingObjects(t *testing.T, dir string) []string {
	t.Helper()
	var miss []string
	for _, l := range strings.Split(git(t, dir, "rev-list", "--objects", "--all", "--missing=print"), "\n") {
		if strings.HasPrefix(l, "?") {
			miss = append(miss, l[1:])
		}
	}
	return miss
}

// TestPartialClone: blobless, size-limited and treeless clones leave out
// what they say, a checkout of an older commit fetches the missing objects
// lazily (the content is right and fsck is clean), a lazy fetch of a blob
// no ref reaches is refused, and an unsupported filter is refused by name.
func TestPartialClone(t *testing.T) {
	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 1)
	big := strings.Repeat("large blob line\n", 200)
	first := commitFile(t, work, "dir/sub/big.txt", big)
	commitFile(t, work, "dir/small.txt", "small one\n")
	commitFile(t, work, "dir/sub/big.txt", big+"more\n")
	commitFile(t, work, "top.txt", "top\n")
	url := s.URL("partial")
	git(t, work, "push", "-q", url, "main")
	// A branch pushed and deleted: its blob stays stored, no ref reaches it.
	git(t, work, "checkout", "-q", "-b", "gone")
	commitFile(t, work, "secret.txt", "not for you\n")
	secret := strings.TrimSpace(git(t, work, "rev-parse", "HEAD:secret.txt"))
	git(t, work, "push", "-q", url, "gone")
	git(t, work, "push", "-q", url, ":gone")
	git(t, work, "checkout", "-q", "main")
	oldBig := strings.TrimSpace(git(t, work, "rev-parse", first+":dir/sub/big.txt"))

	for _, tr := range transports {
		for _, proto := range []string{"0", "2"} {
			t.Run(tr.name+"/v"+proto, func(t *testing.T) {
				url := tr.url(s, "partial")
				pv := "protocol.version=" + proto
				tmp := t.TempDir()

				dir := filepath.Join(tmp, "blobless")
				out := git(t, "", "-c", pv, "clone", "--filter=blob:none", url, dir)
				if strings.Contains(out, "filtering not recognized") {
					t.Fatalf("clone --filter=blob:none:\n%s", out)
				}
				git(t, dir, "config", "protocol.version", proto)
				miss := missingObjects(t, dir)
				if !contains(miss, oldBig) {
					t.Fatalf("blobless clone has the old blob %s (missing: %v)", oldBig, miss)
				}
				git(t, dir, "checkout", "-q", first)
				b, err := os.ReadFile(filepath.Join(dir, "dir/sub/big.txt"))
				if err != nil || string(b) != big {
					t.Fatalf("checkout of %s: big.txt %d bytes, err %v", first, len(b), err)
				}
				if contains(missingObjects(t, dir), oldBig) {
					t.Fatalf("old blob still missing after checkout")
				}
				if out := git(t, dir, "fsck", "--full"); strings.TrimSpace(out) != "" {
					t.Fatalf("fsck of the blobless clone:\n%s", out)
				}
				// A blob no ref reaches is not ours, even by id.
				out, err = gitRun(dir, nil, "fetch", "-q", "origin", secret)
				if err == nil || !strings.Contains(out, "not our ref "+secret) {
					t.Fatalf("fetch of an unreachable blob: err %v\n%s", err, out)
				}
				if _, err := gitRun(dir, nil, "cat-file", "-e", secret); err == nil {
					t.Fatalf("the unreachable blob reached the client")
				}

				// blob:limit: the small blobs come, the big ones do not.
				lim := filepath.Join(tmp, "limit")
				git(t, "", "-c", pv, "clone", "-q", "--no-checkout", "--filter=blob:limit=1k", url, lim)
				miss = missingObjects(t, lim)
				small := strings.TrimSpace(git(t, work, "rev-parse", "main:dir/small.txt"))
				if !contains(miss, oldBig) || contains(miss, small) {
					t.Fatalf("blob:limit=1k: missing %v (big %s, small %s)", miss, oldBig, small)
				}

				// tree:0: commits only; checkout fetches trees and blobs.
				tl := filepath.Join(tmp, "treeless")
				git(t, "", "-c", pv, "clone", "-q", "--no-checkout", "--filter=tree:0", url, tl)
				git(t, tl, "config", "protocol.version", proto)
				rootTree := strings.TrimSpace(git(t, work, "rev-parse", first+"^{tree}"))
				if !contains(missingObjects(t, tl), rootTree) {
					t.Fatalf("tree:0 clone has the tree %s", rootTree)
				}
				if got := commitCount(t, tl, "origin/main"); got != "5" {
					t.Fatalf("tree:0 clone: %s commits, want 5", got)
				}
				git(t, tl, "checkout", "-q", first)
				if b, err := os.ReadFile(filepath.Join(tl, "dir/sub/big.txt")); err != nil || string(b) != big {
					t.Fatalf("treeless checkout: %d bytes, %v", len(b), err)
				}
				if out := git(t, tl, "fsck"); strings.TrimSpace(out) != "" {
					t.Fatalf("fsck of the treeless clone:\n%s", out)
				}

				out = gitFails(t, "", "-c", pv, "clone", "-q", "--filter=object:type=blob", url, filepath.Join(tmp, "bad"))
				if !strings.Contains(out, "filter 'object:type' not supported") {
					t.Fatalf("clone --filter=object:type=blob:\n%s", out)
				}
			})
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
