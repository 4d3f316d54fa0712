package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sshWeirIn runs "weir <args>" on the server over SSH with key, stdin
// fed from in.
func sshWeirIn(t *testing.T, s *weirServer, key, in string, args ...string) (string, error) {
	t.Helper()
	sshArgs := append(strings.Fields(sshCommand(key))[1:], "-p", s.SSHPort, "git@127.0.0.1", "weir")
	cmd := exec.Command("ssh", append(sshArgs, args...)...)
	cmd.Env = gitEnv()
	cmd.Stdin = strings.NewReader(in)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// napModel is a Python node that sleeps $WEIR_PARAM_nap seconds and writes
// main.slow; tok in its name finds its process.
func napModel(tok string) (string, string) {
	return "models/nap_" + tok + ".py", `# weir: outputs = main.slow
import os, time
time.sleep(float(os.environ.get("WEIR_PARAM_nap", "0")))
with open(os.environ["WEIR_OUT_MAIN_SLOW"], "w") as f:
    f.write("x\n1\n")
`
}

// TestOnlineAdmin: with the non-loopback rules, an admin (a key of
// --authorized-keys, or a user marked admin) runs weir import, data and
// user over SSH while a pipeline push runs; the push still lands (on top
// of the import), the tag, branch and imported rows are there; a user
// with write access but no admin flag is refused and nothing changes;
// imports read only the server's import folder or stdin; a token revoked
// online fails the next HTTP request; the offline command says the
// server is running.
func TestOnlineAdmin(t *testing.T) {
	needSandboxes(t)
	data := t.TempDir()
	keys := t.TempDir()
	bob, carol := newKey(t, keys, "bob"), newKey(t, keys, "carol")
	authKeys := filepath.Join(keys, "authorized_keys")
	pub, _ := os.ReadFile(sshKey + ".pub")
	os.WriteFile(authKeys, pub, 0o600)
	weirCLI(t, "user", "add", "bob", "--key", bob+".pub", "--data", data)
	weirCLI(t, "user", "grant", "bob", "*", "write", "--data", data)
	weirCLI(t, "user", "add", "carol", "--key", carol+".pub", "--data", data)
	if out := weirCLI(t, "user", "admin", "carol", "on", "--data", data); !strings.Contains(out, "user carol: admin on") {
		t.Fatalf("weir user admin carol on: %q", out)
	}
	s := startWeir(t, data, "--assume-remote", "--authorized-keys", authKeys)
	admin := func(args ...string) string {
		t.Helper()
		out, err := sshWeirAs(t, s, sshKey, args...)
		if err != nil {
			t.Fatalf("ssh weir %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// The offline command cannot open the database; it says what to do.
	cmd := exec.Command(weirBin, "data", "--data", data, "--repo", "demo", "tables")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "the server is running") || !strings.Contains(string(out), "weir data") {
		t.Fatalf("offline weir data while serving: %v\n%s", err, out)
	}

	tok := fmt.Sprintf("%x", time.Now().UnixNano())
	name, src := napModel(tok)
	dir := pipelineRepo(t, map[string]string{"weir.toml": "namespace = \"main\"\n", name: src})
	env := []string{"GIT_SSH_COMMAND=" + sshCommand(sshKey)}
	url := s.SSHURL("demo")
	if out := gitWith(t, dir, env, "push", url, "main"); !strings.Contains(out, "weir: main advanced") {
		t.Fatalf("first push:\n%s", out)
	}
	os.WriteFile(filepath.Join(data, "imports", "orders.csv"), []byte("id,name\n1,ana\n2,bob\n"), 0o644)

	// While a run of main sleeps: import into main, tag, branch, import
	// from stdin into the new branch, add a user with a key from stdin.
	commitFile(t, dir, "note.txt", "second\n")
	p := pushAsync(t, dir, env, url, "main", "-o", "param.nap=8")
	deadline := time.Now().Add(90 * time.Second)
	for len(procsWith("nap_"+tok)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the napping node did not start; push so far:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := admin("import", "--repo", "demo", "--table", "raw.orders", "orders.csv"); !strings.Contains(out, "imported 1 file(s) into raw.orders on main") || !strings.Contains(out, "2 rows") {
		t.Fatalf("online import:\n%s", out)
	}
	if out := admin("data", "tag", "v1", "main", "--repo", "demo"); !strings.Contains(out, "created data tag v1 at") {
		t.Fatalf("online tag:\n%s", out)
	}
	if out := admin("data", "branch", "feature", "--repo", "demo"); !strings.Contains(out, "created data branch feature at") {
		t.Fatalf("online branch:\n%s", out)
	}
	out, err := sshWeirIn(t, s, carol, "id,amount\n1,10\n2,20\n3,30\n", "import", "--repo", "demo", "--branch", "feature", "--table", "raw.pay", "--format", "csv", "-")
	if err != nil || !strings.Contains(out, "3 rows") {
		t.Fatalf("online import from stdin (carol, an admin user): %v\n%s", err, out)
	}
	dave := newKey(t, keys, "dave")
	davePub, _ := os.ReadFile(dave + ".pub")
	if out, err := sshWeirIn(t, s, sshKey, string(davePub), "user", "add", "dave", "--key", "-"); err != nil || !strings.Contains(out, "user dave: 1 key(s) added") {
		t.Fatalf("online user add: %v\n%s", err, out)
	}
	if len(procsWith("nap_"+tok)) == 0 {
		t.Fatalf("the node ended before the admin commands did; push so far:\n%s", p.out.String())
	}
	got, ok := p.wait()
	if !ok || !strings.Contains(got, "weir: main advanced") {
		t.Fatalf("push during the admin commands:\n%s", got)
	}
	if got := query(t, s, "demo", "main", "SELECT count(*) AS n FROM raw.orders"); got != "n\n2\n" {
		t.Fatalf("raw.orders on main after the run landed: %q", got)
	}
	if got := query(t, s, "demo", "main", "SELECT count(*) AS n FROM main.slow"); got != "n\n1\n" {
		t.Fatalf("main.slow: %q", got)
	}
	if got := query(t, s, "demo", "feature", "SELECT sum(amount) AS s FROM raw.pay"); got != "s\n60\n" {
		t.Fatalf("raw.pay on feature: %q", got)
	}
	if out := admin("data", "tables", "v1", "--repo", "demo"); !strings.Contains(out, "raw.orders") {
		t.Fatalf("tables at v1:\n%s", out)
	}
	if out, err := sshWeirAs(t, s, dave, "whoami"); err != nil || strings.TrimSpace(out) != "dave" {
		t.Fatalf("dave's key, added online: %v %q", err, out)
	}

	// bob may write every repo but is no admin: refused, nothing moves.
	before := lsRemote(t, s.SSHURL("demo"))
	for _, args := range [][]string{
		{"data", "tag", "v2", "main", "--repo", "demo"},
		{"import", "--repo", "demo", "--table", "raw.orders", "orders.csv"},
		{"user", "grant", "bob", "*", "write"},
		{"user", "list"},
		{"rule", "list"},
	} {
		out, err := sshWeirAs(t, s, bob, args...)
		if err == nil || !strings.Contains(out, "weir "+args[0]+": permission denied: admin only") {
			t.Errorf("bob: weir %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if after := lsRemote(t, s.SSHURL("demo")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refs moved after refused commands:\n%v\n%v", before, after)
	}
	if out, err := sshWeirAs(t, s, sshKey, "data", "--data", "/srv", "--repo", "demo", "tables"); err == nil || !strings.Contains(out, "drop --data") {
		t.Errorf("--data over SSH: %v\n%s", err, out)
	}
	if out := admin("user", "list"); !strings.Contains(out, "carol\t") || !strings.Contains(out, "admin") {
		t.Fatalf("user list:\n%s", out)
	}

	// Imports by path stay in the import folder.
	os.Symlink("/etc/hostname", filepath.Join(data, "imports", "host.csv"))
	for _, f := range []string{"../users.json", filepath.Join(data, "users.json"), "/etc/passwd", "host.csv", "missing.csv"} {
		out, err := sshWeirAs(t, s, sshKey, "import", "--repo", "demo", "--branch", "feature", "--table", "raw.leak", f)
		if err == nil || !(strings.Contains(out, "import folder")) {
			t.Errorf("import %s: %v\n%s", f, err, out)
		}
	}
	if out := admin("data", "tables", "feature", "--repo", "demo"); strings.Contains(out, "raw.leak") {
		t.Fatalf("a refused import wrote a table:\n%s", out)
	}

	// Tokens: made, listed and revoked online; the next request fails.
	tokOut, err := sshWeirIn(t, s, sshKey, "", "user", "token", "bob", "--name", "ci")
	tokLine := regexp.MustCompile(`(?m)^weir_\S+$`).FindString(tokOut)
	if err != nil || tokLine == "" {
		t.Fatalf("online token: %v\n%s", err, tokOut)
	}
	infoRefs := s.URL("demo") + "/info/refs?service=git-upload-pack"
	if r := httpGet(t, infoRefs, "bob", tokLine); r.status != 200 {
		t.Fatalf("bob's new token: %d", r.status)
	}
	ls := admin("user", "token", "ls", "bob")
	m := regexp.MustCompile(`(?m)^([0-9a-f]{12})\t\S+\tci$`).FindStringSubmatch(ls)
	if m == nil {
		t.Fatalf("token ls:\n%s", ls)
	}
	if out := admin("user", "token", "revoke", "bob", m[1]); !strings.Contains(out, "token "+m[1]+" revoked") {
		t.Fatalf("revoke: %s", out)
	}
	if r := httpGet(t, infoRefs, "bob", tokLine); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
	if ls := admin("user", "token", "ls", "bob"); strings.Contains(ls, m[1]) {
		t.Fatalf("revoked token still listed:\n%s", ls)
	}
}
