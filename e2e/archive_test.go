package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitOut runs git in dir and returns its stdout alone (an archive).
func gitOut(t *testing.T, dir string, args ...string) ([]byte, string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.String(), err
}

// TestArchiveRemote: git archive --remote over SSH gives the same bytes as
// a local git archive of the same ref (tar; with --prefix, with paths,
// long paths, an executable, a symlink, a tag); options that would run or
// read things on the server, unreachable objects and unknown refs are
// refused with git's NACK, and nothing is written.
func TestArchiveRemote(t *testing.T) {
	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 2)
	long := strings.Repeat("d", 60) + "/" + strings.Repeat("e", 60) + "/" + strings.Repeat("f", 30) + ".txt"
	longer := strings.Repeat("x", 120) + "/" + strings.Repeat("y", 120) + ".txt"
	commitFile(t, work, long, "long path\n")
	commitFile(t, work, longer, "longer path\n")
	commitFile(t, work, "dir/sub/deep.txt", strings.Repeat("deep\n", 3000))
	commitFile(t, work, "dir/other.txt", "other\n")
	if err := os.WriteFile(filepath.Join(work, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("dir/other.txt", filepath.Join(work, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("z/", 70)+"target", filepath.Join(work, "longlink")); err != nil {
		t.Fatal(err)
	}
	git(t, work, "add", "run.sh", "link", "longlink")
	git(t, work, "commit", "-q", "-m", "exec and links")
	git(t, work, "tag", "-a", "-m", "v1", "v1", "HEAD~2")
	url := s.SSHURL("arch")
	git(t, work, "push", "-q", url, "main", "--tags")

	for _, tc := range [][]string{
		{"HEAD"},
		{"main"},
		{"refs/heads/main"},
		{"--format=tar", "v1"},
		{"--prefix=pre/", "main"},
		{"--prefix=a/b//", "main"},
		{"--prefix=flat-", "main"},
		{"main", "dir/sub"},
		{"--prefix=p/", "main", "dir", "run.sh"},
	} {
		local, errOut, err := gitOut(t, work, append([]string{"archive"}, tc...)...)
		if err != nil {
			t.Fatalf("local git archive %v: %v\n%s", tc, err, errOut)
		}
		remote, errOut, err := gitOut(t, work, append([]string{"archive", "--remote=" + url}, tc...)...)
		if err != nil {
			t.Fatalf("git archive --remote %v: %v\n%s", tc, err, errOut)
		}
		if !bytes.Equal(local, remote) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "local.tar"), local, 0o644)
			os.WriteFile(filepath.Join(dir, "remote.tar"), remote, 0o644)
			t.Fatalf("archive %v: %d bytes remote, %d local (kept in %s)", tc, len(remote), len(local), dir)
		}
	}
	// --output picks the format locally; tar is passed as --format=tar.
	out := filepath.Join(t.TempDir(), "x.tar")
	git(t, work, "archive", "--remote="+url, "--output="+out, "main")
	local, _, _ := gitOut(t, work, "archive", "main")
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, local) {
		t.Fatalf("--output x.tar: %d bytes, %v", len(b), err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--exec=touch /tmp/pwned", "main"}, ""}, // --exec runs the remote command: not an argument
		{[]string{"main", "nope.txt"}, "pathspec 'nope.txt' did not match any files"},
		{[]string{"nosuchref"}, "no such ref: nosuchref"},
		{[]string{revParse(t, work, "HEAD")}, "no such ref: "},
		{[]string{"--add-file=/etc/passwd", "main"}, "not allowed"},
		{[]string{"--format=zip", "main"}, "format 'zip' is not served here"},
		{[]string{"--mtime=now", "main"}, "unsupported option --mtime=now"},
	} {
		b, errOut, err := gitOut(t, work, append([]string{"archive", "--remote=" + url}, tc.args...)...)
		if err == nil || len(b) != 0 || !strings.Contains(errOut, tc.want) {
			t.Fatalf("git archive --remote %v: err %v, %d bytes out:\n%s", tc.args, err, len(b), errOut)
		}
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Fatal("--exec ran a command")
	}
	// Over HTTP, C git does not speak upload-archive at all.
	if _, errOut, err := gitOut(t, work, "archive", "--remote="+s.URL("arch"), "main"); err == nil {
		t.Fatalf("archive over http succeeded:\n%s", errOut)
	}
}
