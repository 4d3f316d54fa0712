package objects

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/pebblekv"
)

// gitRepo is a real C git repository in a temp dir.
type gitRepo struct {
	t   testing.TB
	dir string
}

func newGitRepo(t testing.TB) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	g := &gitRepo{t: t, dir: t.TempDir()}
	g.run(nil, "init", "-q", "-b", "main")
	return g
}

// run runs git with stdin and returns stdout.
func (g *gitRepo) run(stdin []byte, args ...string) []byte {
	g.t.Helper()
	out, err := g.try(stdin, args...)
	if err != nil {
		g.t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (g *gitRepo) try(stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=A U Thor", "GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=C O Mitter", "GIT_COMMITTER_EMAIL=committer@example.com",
		"GIT_AUTHOR_DATE=1700000000 +0000", "GIT_COMMITTER_DATE=1700000000 +0000",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+g.dir)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return out, nil
}

func (g *gitRepo) write(name, content string) {
	g.t.Helper()
	p := filepath.Join(g.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// commit stages everything and commits; returns the commit hash.
func (g *gitRepo) commit(msg string) Hash {
	g.t.Helper()
	g.run(nil, "add", "-A")
	g.run(nil, "commit", "-q", "-m", msg)
	return g.revParse("HEAD")
}

func (g *gitRepo) revParse(rev string) Hash {
	g.t.Helper()
	return plumbing.NewHash(strings.TrimSpace(string(g.run(nil, "rev-parse", rev))))
}

// hashObject writes a raw object with --literally (no checks).
func (g *gitRepo) hashObject(typ string, data []byte) Hash {
	g.t.Helper()
	out := g.run(data, "hash-object", "--literally", "-w", "-t", typ, "--stdin")
	return plumbing.NewHash(strings.TrimSpace(string(out)))
}

// packObjects returns a pack of exactly the listed objects.
func (g *gitRepo) packObjects(hashes ...Hash) []byte {
	g.t.Helper()
	var in bytes.Buffer
	for _, h := range hashes {
		fmt.Fprintln(&in, h)
	}
	return g.run(in.Bytes(), "pack-objects", "-q", "--stdout")
}

// packRevs returns a pack for rev-list arguments ("HEAD", "^abc", ...).
func (g *gitRepo) packRevs(extra []string, revs ...string) []byte {
	g.t.Helper()
	args := append([]string{"pack-objects", "-q", "--stdout", "--revs"}, extra...)
	return g.run([]byte(strings.Join(revs, "\n")+"\n"), args...)
}

// allObjects returns every object in the repo with its type and content.
func (g *gitRepo) allObjects() map[Hash]*Object {
	g.t.Helper()
	out := g.run(nil, "cat-file", "--batch-all-objects", "--batch")
	objs := make(map[Hash]*Object)
	r := bufio.NewReader(bytes.NewReader(out))
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			g.t.Fatal(err)
		}
		f := strings.Fields(line)
		size, _ := strconv.Atoi(f[2])
		data := make([]byte, size+1)
		if _, err := io.ReadFull(r, data); err != nil {
			g.t.Fatal(err)
		}
		typ, err := plumbing.ParseObjectType(f[1])
		if err != nil {
			g.t.Fatal(err)
		}
		objs[plumbing.NewHash(f[0])] = &Object{Type: typ, Data: data[:size]}
	}
	return objs
}

// memStore opens a Store on an in-memory Pebble.
func memStore(t testing.TB, lim Limits) *Store {
	t.Helper()
	db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(db, lim)
}

// commitQuarantine commits q's batch as package refs would, without refs.
func commitQuarantine(t testing.TB, q *Quarantine) {
	t.Helper()
	if err := q.CommitWith(func(kv.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// packKinds returns the pack entry types of a pack, in order.
func packKinds(t testing.TB, pack []byte) []byte {
	t.Helper()
	q := memStore(t, Limits{}).NewQuarantine("kinds")
	defer q.Close()
	in := newIngest(context.Background(), q)
	defer in.close()
	if err := in.parse(bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	var kinds []byte
	for _, e := range in.entries {
		kinds = append(kinds, e.kind)
	}
	return kinds
}
