package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// evilGitmodules points a submodule's URL at an option: a client that
// runs `git clone <url>` without "--" would run the command (CVE-2018-17456).
const evilGitmodules = "[submodule \"x\"]\n\tpath = x\n\turl = -upload-pack=touch /tmp/weir-pwned\n"

// pushRefused pushes ref from work to origin, expects the push to be
// refused naming check, and the server's refs not to move.
func pushRefused(t *testing.T, work, url, ref, check string) string {
	t.Helper()
	before := lsRemote(t, url)
	out := gitFails(t, work, "push", "origin", ref)
	if !strings.Contains(out, check) {
		t.Fatalf("push refused without naming %s:\n%s", check, out)
	}
	if !strings.Contains(out, "remote rejected") {
		t.Errorf("push output has no \"remote rejected\":\n%s", out)
	}
	if after := lsRemote(t, url); !equalMaps(before, after) {
		t.Fatalf("refs moved:\nbefore %v\nafter  %v", before, after)
	}
	return out
}

// gitFsckChecks runs `git fsck` in dir and returns the message ids it
// reports for the object rev names, comma-separated ("" for none).
func gitFsckChecks(t *testing.T, dir, rev string) string {
	t.Helper()
	id := revParse(t, dir, rev)
	out, _ := gitRun(dir, nil, "fsck", "--no-dangling", "--no-progress")
	var ids []string
	for _, line := range strings.Split(out, "\n") {
		// "error in blob <id>: gitmodulesUrl: disallowed submodule url: ..."
		if _, rest, ok := strings.Cut(line, " "+id+": "); ok {
			if check, _, ok := strings.Cut(rest, ":"); ok {
				ids = append(ids, check)
			}
		}
	}
	return strings.Join(ids, ",")
}

// TestPushGitmodulesRefused: a commit whose .gitmodules git fsck refuses is
// refused on push over smart HTTP with git's message id, and no ref moves;
// also when the blob is already on the server as an ordinary file and the
// push brings only the tree that names it .gitmodules, and when only a
// checkout (not git fsck) would read the bad URL.
func TestPushGitmodulesRefused(t *testing.T) {
	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 1)
	url := s.URL("modules")
	git(t, work, "remote", "add", "origin", url)
	git(t, work, "push", "-q", "origin", "main")

	t.Run("url option", func(t *testing.T) {
		git(t, work, "checkout", "-q", "-b", "evil-url", "main")
		commitFile(t, work, ".gitmodules", evilGitmodules)
		// C git's own fsck refuses the same blob with the same id.
		if got := gitFsckChecks(t, work, "evil-url:.gitmodules"); got != "gitmodulesUrl" {
			t.Fatalf("git fsck says %q of the .gitmodules blob, want gitmodulesUrl", got)
		}
		out := pushRefused(t, work, url, "evil-url", "gitmodulesUrl")
		t.Logf("git push says:\n%s", out)
		if !strings.Contains(out, "-upload-pack=touch /tmp/weir-pwned") {
			t.Errorf("refusal does not quote the URL:\n%s", out)
		}
	})

	t.Run("path option", func(t *testing.T) {
		git(t, work, "checkout", "-q", "-b", "evil-path", "main")
		commitFile(t, work, ".gitmodules", "[submodule \"x\"]\n\tpath = -x\n\turl = https://example.com/x.git\n")
		pushRefused(t, work, url, "evil-path", "gitmodulesPath")
	})

	t.Run("name climbs", func(t *testing.T) {
		git(t, work, "checkout", "-q", "-b", "evil-name", "main")
		commitFile(t, work, ".gitmodules", "[submodule \"../../x\"]\n\tpath = x\n\turl = https://example.com/x.git\n")
		pushRefused(t, work, url, "evil-name", "gitmodulesName")
	})

	t.Run("blob already on the server", func(t *testing.T) {
		git(t, work, "checkout", "-q", "-b", "notes", "main")
		commitFile(t, work, "notes.txt", evilGitmodules)
		git(t, work, "push", "-q", "origin", "notes") // an ordinary file: fine
		git(t, work, "mv", "notes.txt", ".gitmodules")
		git(t, work, "commit", "-q", "-m", "rename to .gitmodules")
		// The pack holds a commit and a tree; the blob is not sent again.
		if n := strings.Count(git(t, work, "rev-list", "--objects", "notes", "^origin/notes"), "\n"); n != 2 {
			t.Fatalf("the push would send %d objects, want 2 (commit and tree)", n)
		}
		pushRefused(t, work, url, "notes", "gitmodulesUrl")
	})

	t.Run("only a checkout reads it", func(t *testing.T) {
		// A 0xff byte before the URL: git fsck reads the blob with signed
		// chars (x86), takes 0xff for the end of the file and passes it;
		// a checkout reads the file and gets the URL.
		git(t, work, "checkout", "-q", "-b", "evil-0xff", "main")
		commitFile(t, work, ".gitmodules", "[submodule \"x\"]\n\tpath = x\xff\n\turl = -upload-pack=touch /tmp/weir-pwned\n")
		if got := strings.TrimSpace(git(t, work, "config", "--file", ".gitmodules", "submodule.x.url")); got != "-upload-pack=touch /tmp/weir-pwned" {
			t.Fatalf("git reads the checked-out file's URL as %q", got)
		}
		if got := gitFsckChecks(t, work, "evil-0xff:.gitmodules"); got != "" {
			t.Logf("this git's fsck refuses it too: %s", got)
		} else {
			t.Logf("git fsck passes the blob; a checkout reads url = -upload-pack=...")
		}
		pushRefused(t, work, url, "evil-0xff", "gitmodulesUrl")
	})

	t.Run("good modules", func(t *testing.T) {
		git(t, work, "checkout", "-q", "-b", "good", "main")
		commitFile(t, work, ".gitmodules", "[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n\tupdate = rebase\n")
		git(t, work, "push", "-q", "origin", "good")
		if got, want := lsRemote(t, url)["refs/heads/good"], revParse(t, work, "good"); got != want {
			t.Fatalf("good .gitmodules: server has %q, want %s", got, want)
		}
	})
}

// dulwichPushScript commits a .gitmodules with dulwich (a second Git
// implementation) and pushes it; it prints what dulwich reports.
const dulwichPushScript = `
import os, sys
from dulwich import porcelain
from dulwich.repo import Repo

url, path, content = sys.argv[1], sys.argv[2], sys.argv[3]
r = porcelain.clone(url, path, checkout=True, errstream=sys.stderr.buffer)
with open(os.path.join(path, ".gitmodules"), "w") as f:
    f.write(content)
porcelain.add(r, [os.path.join(path, ".gitmodules")])
c = porcelain.commit(r, message=b"modules", author=b"D <d@d.test>", committer=b"D <d@d.test>")
print("commit", c.decode())
sys.stdout.flush()
try:
    porcelain.push(r, url, b"refs/heads/main", errstream=sys.stdout.buffer)
except Exception as e:
    print("error", e)
`

// TestPushGitmodulesRefusedDulwich: the same refusal for dulwich's push.
func TestPushGitmodulesRefusedDulwich(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import dulwich").Run(); err != nil {
		t.Skip("dulwich not installed for /usr/bin/python3 (apt-get install python3-dulwich)")
	}
	s := startWeir(t, t.TempDir())
	url := s.URL("dulmodules")
	work := newWorkRepo(t, 1)
	git(t, work, "remote", "add", "origin", url)
	git(t, work, "push", "-q", "origin", "main")
	before := lsRemote(t, url)

	script := filepath.Join(t.TempDir(), "push.py")
	if err := os.WriteFile(script, []byte(dulwichPushScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script, url, filepath.Join(t.TempDir(), "dul"), evilGitmodules)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dulwich: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "gitmodulesUrl") {
		t.Fatalf("dulwich's push was not refused naming gitmodulesUrl:\n%s", out)
	}
	if after := lsRemote(t, url); !equalMaps(before, after) {
		t.Fatalf("refs moved:\nbefore %v\nafter  %v", before, after)
	}
}
