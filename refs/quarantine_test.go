package refs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// gitPack makes a repo with one commit of n random files and returns a
// pack of it and the commit.
func gitPack(t *testing.T, n int) ([]byte, objects.Hash) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	git := func(stdin []byte, args ...string) []byte {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=A", "GIT_AUTHOR_EMAIL=a@example.com",
			"GIT_COMMITTER_NAME=C", "GIT_COMMITTER_EMAIL=c@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return out
	}
	git(nil, "init", "-q")
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < n; i++ {
		b := make([]byte, 2048)
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(nil, "add", "-A")
	git(nil, "commit", "-q", "-m", "files")
	head := plumbing.NewHash(strings.TrimSpace(string(git(nil, "rev-parse", "HEAD"))))
	return git([]byte("HEAD\n"), "pack-objects", "-q", "--stdout", "--revs"), head
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// TestQuarantineAcrossPackages: pushed objects are invisible until the ref
// update that commits them, gone after a Close without commit, and 1,000
// refused pushes leave the database exactly as big as it was.
func TestQuarantineAcrossPackages(t *testing.T) {
	ctx := context.Background()
	pack, head := gitPack(t, 32)
	dir := t.TempDir()
	db, err := pebblekv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	o := objects.New(db, objects.Limits{})
	rd := refs.NewDB(o)
	repo := objects.RepoName("demo")

	// Refused push: ingested, checked, closed.
	q := o.NewQuarantine(repo)
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	if err := q.Check(ctx, []objects.Hash{head}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Get(ctx, head); err != nil {
		t.Fatalf("quarantine cannot read its own object: %v", err)
	}
	if _, err := o.Get(ctx, repo, head); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("store sees a quarantined object: %v", err)
	}
	q.Close()
	if _, err := o.Get(ctx, repo, head); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("closed quarantine's object visible: %v", err)
	}

	// 1,000 refused pushes do not grow the database.
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	m0 := db.Metrics()
	size0 := dirSize(t, dir)
	for i := 0; i < 1000; i++ {
		q := o.NewQuarantine(repo)
		if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m1 := db.Metrics()
	size1 := dirSize(t, dir)
	if m1.WAL.BytesIn != m0.WAL.BytesIn || m1.DiskSpaceUsage() != m0.DiskSpaceUsage() || size1 != size0 {
		t.Fatalf("1,000 refused pushes of %d bytes grew the database: WAL in %d -> %d, disk usage %d -> %d, dir %d -> %d",
			len(pack), m0.WAL.BytesIn, m1.WAL.BytesIn, m0.DiskSpaceUsage(), m1.DiskSpaceUsage(), size0, size1)
	}
	t.Logf("1,000 refused pushes of a %d-byte pack: WAL bytes in %d -> %d, dir %d -> %d bytes", len(pack), m0.WAL.BytesIn, m1.WAL.BytesIn, size0, size1)

	// Accepted push: the ref update commits the objects in the same write.
	q = o.NewQuarantine(repo)
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	if err := rd.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", New: head}}, q, "push"); err != nil {
		t.Fatal(err)
	}
	if !q.Committed() {
		t.Fatal("quarantine not marked committed")
	}
	c, err := o.Get(ctx, repo, head)
	if err != nil || c.Type != plumbing.CommitObject {
		t.Fatalf("committed object: %v", err)
	}
	if m2 := db.Metrics(); m2.WAL.BytesIn <= m1.WAL.BytesIn {
		t.Fatal("accepted push wrote nothing to the WAL")
	}
	// A committed quarantine cannot be committed twice.
	if err := rd.Update(ctx, repo, []refs.Update{{Name: "refs/heads/x", New: head}}, q, "again"); err == nil {
		t.Fatal("second commit of one quarantine succeeded")
	}
	if _, err := rd.Get(ctx, repo, "refs/heads/x"); !errors.Is(err, refs.ErrNotFound) {
		t.Fatalf("failed update moved a ref: %v", err)
	}
}
