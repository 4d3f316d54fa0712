package refs_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// TestResolveRevisionAgainstGit: on a repo C git made (a merge, an
// annotated tag, a lightweight tag), ResolveRevision gives what
// git rev-parse --verify REV^{commit} gives, and refuses what git refuses.
func TestResolveRevisionAgainstGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git on PATH")
	}
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@b", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@b", "HOME=" + dir, "PATH=/usr/bin:/bin"}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q", "-b", "main")
	for i := range 4 {
		run("commit", "-q", "--allow-empty", "-m", fmt.Sprint("c", i))
	}
	run("checkout", "-q", "-b", "side", "main~2")
	run("commit", "-q", "--allow-empty", "-m", "side")
	run("checkout", "-q", "main")
	run("merge", "-q", "--no-ff", "-m", "merge", "side")
	run("tag", "-a", "-m", "v1", "v1", "main~3")
	run("tag", "light", "main^2")

	// Every object into the store, as a push would bring it.
	_, o := newMemStore(t)
	ctx := context.Background()
	cmd := exec.Command("git", "cat-file", "--batch-all-objects", "--batch")
	cmd.Dir = dir
	raw, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(bytes.NewReader(raw))
	for {
		var id, typ string
		var size int
		if _, err := fmt.Fscanf(rd, "%s %s %d\n", &id, &typ, &size); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, size+1)
		if _, err := io.ReadFull(rd, data); err != nil {
			t.Fatal(err)
		}
		ot, _ := plumbing.ParseObjectType(typ)
		if h, err := o.Put(ctx, "r", ot, data[:size]); err != nil || h.String() != id {
			t.Fatalf("put %s: %v %v", id, h, err)
		}
	}
	names := func(_ context.Context, name string) (objects.Hash, error) {
		for _, full := range []string{"refs/heads/" + name, "refs/tags/" + name} {
			cmd := exec.Command("git", "rev-parse", "--verify", "-q", full)
			cmd.Dir = dir
			if out, err := cmd.Output(); err == nil {
				h, _ := objects.ParseHash(bytes.TrimSpace(out))
				return h, nil
			}
		}
		return objects.ZeroHash, refs.ErrNotFound
	}
	head := run("rev-parse", "main")
	side := run("rev-parse", "side")
	for _, rev := range []string{
		"main", "main^", "main^1", "main^2", "main~1", "main~2", "main~3", "main^^", "main^2~1", "main^2^", "main~0", "main^0",
		"side", "side~2", "v1", "v1~1", "v1^{commit}", "light", "light^", "main^{commit}~1",
		head, head[:4], head[:7], head[:11] + "^2", side[:5] + "~1", strings.ToUpper(head[:8]),
		"main~5", "main~9", "main^3", "v1~9", "nope", "main~x", "main^{tree}", "0000", head[:3],
	} {
		cmd := exec.Command("git", "rev-parse", "--verify", "-q", rev+"^{commit}")
		cmd.Dir = dir
		want, gitErr := cmd.Output()
		got, err := refs.ResolveRevision(ctx, o, "r", rev, names)
		switch {
		case gitErr != nil && err == nil:
			t.Errorf("%s: git refuses it, weir gives %s", rev, got)
		case gitErr == nil && err != nil:
			t.Errorf("%s: git gives %s, weir refuses: %v", rev, bytes.TrimSpace(want), err)
		case gitErr == nil && got.String() != string(bytes.TrimSpace(want)):
			t.Errorf("%s: git gives %s, weir %s", rev, bytes.TrimSpace(want), got)
		}
	}
}
