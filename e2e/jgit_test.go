package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// jgitClasspath is Debian's libjgit-java and what it needs.
var jgitClasspath = []string{
	"/usr/share/java/org.eclipse.jgit.jar", "/usr/share/java/jsch.jar", "/usr/share/java/jzlib.jar",
	"/usr/share/java/slf4j-api.jar", "/usr/share/java/slf4j-nop.jar",
}

// TestJGitSSH: JGit 4.11 with JSch (which knows neither ed25519 host keys
// nor rsa-sha2 signatures, and reads only PEM user keys) clones over SSH
// and pushes a commit back; C git sees the pushed commit.
func TestJGitSSH(t *testing.T) {
	for _, p := range jgitClasspath {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("JGit not installed (apt-get install libjgit-java): %v", err)
		}
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Skip("no javac")
	}
	cp := strings.Join(jgitClasspath, ":")
	classes := t.TempDir()
	if out, err := exec.Command(javac, "-cp", cp, "-d", classes, "testdata/jgit/JGitSSH.java").CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	key := filepath.Join(t.TempDir(), "id_rsa")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-m", "PEM", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}

	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 2)
	url := s.SSHURL("jgit")
	git(t, work, "push", "-q", url, "main")
	tip := revParse(t, work, "HEAD")

	home := t.TempDir()
	clone := filepath.Join(t.TempDir(), "clone")
	cmd := exec.Command("java", "-Duser.home="+home, "-cp", cp+":"+classes, "JGitSSH", url, clone, key)
	cmd.Env = append(os.Environ(), "HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jgit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "HEAD "+tip+"\n") {
		t.Fatalf("jgit clone: want HEAD %s:\n%s", tip, out)
	}
	if !strings.Contains(string(out), "refs/heads/main OK\n") {
		t.Fatalf("jgit push:\n%s", out)
	}
	var pushed string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "NEW ") {
			pushed = strings.TrimPrefix(l, "NEW ")
		}
	}
	if got := lsRemote(t, url)["refs/heads/main"]; got != pushed || pushed == tip {
		t.Fatalf("main on the server %s, jgit pushed %s (old %s)", got, pushed, tip)
	}
	check := filepath.Join(t.TempDir(), "check")
	git(t, "", "clone", "-q", url, check)
	if b, err := os.ReadFile(filepath.Join(check, "jgit.txt")); err != nil || string(b) != "from jgit\n" {
		t.Fatalf("jgit.txt in a C git clone: %q, %v", b, err)
	}
}
