package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Swarm tests: many pushes at once go through the server's one run queue
// (hooks/sched): they queue beyond --runs, are refused at once past
// --run-queue, wait behind a run of their own branch and are checked
// again after it, share the queue fairly between identities, and show up
// in "weir runs <repo>". Small slot counts keep them to a handful of
// pushes; a slow node (a Python model that sleeps) holds a slot while the
// test acts, and the test waits for outcomes it sees (output lines, the
// listing), never for a time.

// sleepModel is a Python model writing one row to main.<table> after
// sleeping secs seconds; fail makes it exit 1 instead.
func sleepModel(table string, secs int, fail bool) string {
	end := fmt.Sprintf("open(os.environ['WEIR_OUT_MAIN_%s'], 'w').write('n\\n1\\n')\n", strings.ToUpper(table))
	if fail {
		end = "raise SystemExit(1)\n"
	}
	return fmt.Sprintf("# weir: outputs = main.%s\nimport os, time\ntime.sleep(%d)\n%s", table, secs, end)
}

// branchWith commits a sleep model on a new branch b of dir, made from
// main, and returns to main.
func branchWith(t *testing.T, dir, b string, secs int) {
	t.Helper()
	git(t, dir, "checkout", "-q", "-b", b, "main")
	commitFile(t, dir, "models/m.py", sleepModel("m", secs, false)+"# "+b+"\n")
	git(t, dir, "checkout", "-q", "main")
}

// bearer is the git environment that sends token on every HTTP request.
func bearer(token string) []string {
	return []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Bearer " + token}
}

// sshWeirAs runs "weir <args>" on the server over SSH with key.
func sshWeirAs(t *testing.T, s *weirServer, key string, args ...string) (string, error) {
	t.Helper()
	sshArgs := append(strings.Fields(sshCommand(key))[1:], "-p", s.SSHPort, "git@127.0.0.1", "weir")
	cmd := exec.Command("ssh", append(sshArgs, args...)...)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runRow is one line of "weir runs".
type runRow struct {
	id, state, branch, pusher, note string
}

// listRuns runs "weir runs repo" and parses its table.
func listRuns(t *testing.T, s *weirServer, repo string) []runRow {
	t.Helper()
	out, err := sshWeir(t, s, "runs", repo)
	if err != nil {
		t.Fatalf("weir runs %s: %v\n%s", repo, err, out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "RUN") {
		t.Fatalf("weir runs %s: no header:\n%s", repo, out)
	}
	var rows []runRow
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("weir runs %s: short line %q", repo, l)
		}
		r := runRow{id: f[0], state: f[1], branch: f[2], pusher: f[3]}
		if len(f) > 6 {
			r.note = strings.Join(f[6:], " ")
		}
		rows = append(rows, r)
	}
	return rows
}

// countRuns counts rows whose pusher is pusher (any if "") and state is
// one of states.
func countRuns(rows []runRow, pusher string, states ...string) int {
	n := 0
	for _, r := range rows {
		for _, st := range states {
			if r.state == st && (pusher == "" || r.pusher == pusher) {
				n++
			}
		}
	}
	return n
}

// waitRuns polls "weir runs repo" until ok holds for its rows.
func waitRuns(t *testing.T, s *weirServer, repo, what string, ok func([]runRow) bool) []runRow {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows := listRuns(t, s, repo)
		if ok(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("weir runs %s never showed %s: %+v", repo, what, rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSwarmQueuesBeyondSlots: with one run slot, a slow run holds it and
// three more pushes to other branches queue ("weir: queued, ...") and all
// land once it is free.
func TestSwarmQueuesBeyondSlots(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir(), "--runs", "1", "--run-queue", "8")
	dir := newWorkRepo(t, 1)
	branchWith(t, dir, "b0", 6)
	for i := 1; i <= 3; i++ {
		branchWith(t, dir, fmt.Sprintf("b%d", i), 0)
	}
	url := s.URL("swarm")
	hold := pushAsync(t, dir, nil, url, "b0")
	hold.waitOut(t, "weir: run r-")
	var pushes []*asyncPush
	for i := 1; i <= 3; i++ {
		pushes = append(pushes, pushAsync(t, dir, nil, url, fmt.Sprintf("b%d", i)))
	}
	queued := 0
	for i, p := range append([]*asyncPush{hold}, pushes...) {
		out, ok := p.wait()
		if !ok || !strings.Contains(out, fmt.Sprintf("weir: b%d advanced", i)) {
			t.Fatalf("push of b%d failed:\n%s", i, out)
		}
		if strings.Contains(out, "remote: weir: queued") {
			queued++
		}
	}
	if queued == 0 {
		t.Fatal("no push behind the slow run was queued")
	}
	refs := lsRemote(t, url)
	for i := 0; i <= 3; i++ {
		b := fmt.Sprintf("b%d", i)
		if refs["refs/heads/"+b] != revParse(t, dir, b) || refs["refs/data/"+b] == "" {
			t.Fatalf("%s did not land with its data: %v", b, refs)
		}
	}
	rows := listRuns(t, s, "swarm")
	if n := countRuns(rows, "", "succeeded"); n != 4 || len(rows) != 4 {
		t.Fatalf("weir runs: %d succeeded of %d, want 4 of 4: %+v", n, len(rows), rows)
	}
}

// TestSwarmFairShare: alice floods the queue (one slow run holding the
// only slot, four more queued); bob pushes once after. Under the fair
// policy bob's run is not last: when his push has landed, alice still has
// runs waiting, and in the end every run of both landed.
func TestSwarmFairShare(t *testing.T) {
	needSandboxes(t)
	data := t.TempDir()
	weirCLI(t, "user", "add", "alice", "--data", data)
	weirCLI(t, "user", "add", "bob", "--data", data)
	aliceTok := strings.TrimSpace(weirCLI(t, "user", "token", "alice", "--data", data))
	bobTok := strings.TrimSpace(weirCLI(t, "user", "token", "bob", "--data", data))
	s := startWeir(t, data, "--runs", "1", "--run-queue", "16", "--run-policy", "fair")
	url := s.URL("fair")
	// On loopback git sends no credentials unless asked: send the token.
	aliceEnv, bobEnv := bearer(aliceTok), bearer(bobTok)
	dir := newWorkRepo(t, 1)
	branchWith(t, dir, "a0", 6)
	for i := 1; i <= 4; i++ {
		branchWith(t, dir, fmt.Sprintf("a%d", i), 1)
	}
	branchWith(t, dir, "b1", 0)

	hold := pushAsync(t, dir, aliceEnv, url, "a0")
	hold.waitOut(t, "weir: run r-")
	pushes := []*asyncPush{hold}
	for i := 1; i <= 4; i++ {
		pushes = append(pushes, pushAsync(t, dir, aliceEnv, url, fmt.Sprintf("a%d", i)))
	}
	waitRuns(t, s, "fair", "alice's four runs queued", func(rows []runRow) bool {
		return countRuns(rows, "alice", "queued") == 4
	})
	bob := pushAsync(t, dir, bobEnv, url, "b1")
	out, ok := bob.wait()
	if !ok || !strings.Contains(out, "weir: b1 advanced") {
		t.Fatalf("bob's push:\n%s", out)
	}
	rows := listRuns(t, s, "fair")
	if left := countRuns(rows, "alice", "queued", "running"); left < 2 {
		t.Fatalf("bob's run landed after all but %d of alice's: the flood starved him: %+v", left, rows)
	}
	for i, p := range pushes {
		if out, ok := p.wait(); !ok {
			t.Fatalf("alice's push a%d failed:\n%s", i, out)
		}
	}
	rows = listRuns(t, s, "fair")
	if a, b := countRuns(rows, "alice", "succeeded"), countRuns(rows, "bob", "succeeded"); a != 5 || b != 1 {
		t.Fatalf("succeeded runs: alice %d (want 5), bob %d (want 1): %+v", a, b, rows)
	}
}

// TestSwarmQueueFull: one slot, a queue of one: with a run going and one
// push queued, the next push is refused at once with "server busy" and
// nothing of it moves; the other two land.
func TestSwarmQueueFull(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir(), "--runs", "1", "--run-queue", "1")
	dir := newWorkRepo(t, 1)
	branchWith(t, dir, "hold", 6)
	branchWith(t, dir, "q1", 0)
	branchWith(t, dir, "q2", 0)
	url := s.URL("full")
	hold := pushAsync(t, dir, nil, url, "hold")
	hold.waitOut(t, "weir: run r-")
	q1 := pushAsync(t, dir, nil, url, "q1")
	q1.waitOut(t, "weir: queued")
	out, err := gitRun(dir, nil, "push", url, "q2")
	if err == nil || !strings.Contains(out, "weir: server busy: 1 runs queued; try again later") {
		t.Fatalf("push past the queue: err %v, want refused with server busy:\n%s", err, out)
	}
	if strings.Contains(out, "weir: run r-") {
		t.Fatalf("the refused push ran:\n%s", out)
	}
	for _, p := range []*asyncPush{hold, q1} {
		if out, ok := p.wait(); !ok {
			t.Fatalf("push failed:\n%s", out)
		}
	}
	refs := lsRemote(t, url)
	if _, ok := refs["refs/heads/q2"]; ok || refs["refs/data/q2"] != "" {
		t.Fatalf("the refused push moved refs: %v", refs)
	}
	if refs["refs/heads/q1"] == "" || refs["refs/heads/hold"] == "" {
		t.Fatalf("the admitted pushes did not land: %v", refs)
	}
	if rows := listRuns(t, s, "full"); len(rows) != 2 {
		t.Fatalf("weir runs lists %d runs, want the 2 admitted: %+v", len(rows), rows)
	}
}

// TestSwarmSameBranch: a second push to a branch whose run is going waits
// behind it without running. When the first lands, the second is no
// longer a fast-forward and is refused before anything of it runs; when
// the first fails, the second runs after it and lands.
func TestSwarmSameBranch(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir(), "--runs", "4")
	url := s.URL("same")
	a := newWorkRepo(t, 0)
	commitFile(t, a, "models/m.py", sleepModel("m", 0, false))
	git(t, a, "push", "-q", url, "main")
	b := filepath.Join(t.TempDir(), "b")
	git(t, "", "clone", "-q", url, b)

	// The first lands: the second is refused, without a run.
	commitFile(t, a, "models/m.py", sleepModel("m", 5, false))
	first := pushAsync(t, a, nil, url, "main")
	first.waitOut(t, "weir: run r-")
	commitFile(t, b, "notes.txt", "b's change\n")
	second := pushAsync(t, b, nil, url, "main")
	second.waitOut(t, "weir: queued behind 1 run of this branch")
	if out, ok := first.wait(); !ok || !strings.Contains(out, "weir: main advanced") {
		t.Fatalf("first push:\n%s", out)
	}
	out, ok := second.wait()
	if ok || !strings.Contains(out, "while this push waited for the run ahead of it; fetch first") {
		t.Fatalf("second push: want refused with fetch first:\n%s", out)
	}
	if strings.Contains(out, "weir: run r-") {
		t.Fatalf("the second push ran although it was no longer a fast-forward:\n%s", out)
	}
	if got := lsRemote(t, url)["refs/heads/main"]; got != revParse(t, a, "HEAD") {
		t.Fatalf("main = %s, want the first push's %s", got, revParse(t, a, "HEAD"))
	}
	rows := listRuns(t, s, "same")
	if rows[0].state != "refused" || !strings.Contains(rows[0].note, "fetch first") {
		t.Fatalf("weir runs: the second push is not listed refused: %+v", rows)
	}

	// The first fails: the second waits for it, then runs and lands.
	git(t, b, "fetch", "-q", url, "+main:refs/remotes/origin/main")
	git(t, b, "reset", "-q", "--hard", "origin/main")
	commitFile(t, a, "models/m.py", sleepModel("m", 3, true))
	first = pushAsync(t, a, nil, url, "main")
	first.waitOut(t, "weir: run r-")
	commitFile(t, b, "notes.txt", "b's second change\n")
	second = pushAsync(t, b, nil, url, "main")
	second.waitOut(t, "weir: queued behind 1 run of this branch")
	if strings.Contains(second.out.String(), "weir: run r-") {
		t.Fatalf("the second push started a run while the first ran:\n%s", second.out.String())
	}
	if out, ok := first.wait(); ok {
		t.Fatalf("the failing push landed:\n%s", out)
	}
	if out, ok := second.wait(); !ok || !strings.Contains(out, "weir: main advanced") {
		t.Fatalf("second push after a failed run:\n%s", out)
	}
	rows = listRuns(t, s, "same")
	if rows[0].state != "succeeded" || rows[1].state != "failed" {
		t.Fatalf("weir runs: want the second succeeded after the first failed: %+v", rows)
	}
}

// TestSwarmClientKilled: the pusher is killed while its node sleeps: the
// run stops (its node's processes end), "weir runs" says cancelled, the
// run log says the client disconnected, and the branch does not move.
func TestSwarmClientKilled(t *testing.T) {
	needSandboxes(t)
	tok := token(t)
	s := startWeir(t, t.TempDir())
	url := s.URL("killed")
	dir := newWorkRepo(t, 0)
	commitFile(t, dir, "models/m.py", sleepModel("m", 0, false))
	git(t, dir, "push", "-q", url, "main")
	before := lsRemote(t, url)
	commitFile(t, dir, "models/sleepy_"+tok+".py", sleepModel("sleepy", 120, false))
	t.Cleanup(func() {
		for _, pid := range procsWith("sleepy_" + tok) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	p := pushAsync(t, dir, nil, url, "main")
	deadline := time.Now().Add(60 * time.Second)
	for len(procsWith("sleepy_"+tok)) < 2 { // the runner and the script
		if time.Now().After(deadline) {
			t.Fatalf("the node did not start:\n%s", p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.wait()
	rows := waitRuns(t, s, "killed", "the run cancelled", func(rows []runRow) bool {
		return len(rows) == 2 && rows[0].state == "cancelled"
	})
	if !strings.Contains(rows[0].note, "client disconnected") {
		t.Fatalf("cancelled run's note: %+v", rows[0])
	}
	// An outcome with a generous bound: the sandbox of a cancelled run
	// is killed with it.
	deadline = time.Now().Add(30 * time.Second)
	for len(procsWith("sleepy_"+tok)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled run's node still runs: %v", procsWith("sleepy_"+tok))
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := lsRemote(t, url)
	if after["refs/heads/main"] != before["refs/heads/main"] || after["refs/data/main"] != before["refs/data/main"] {
		t.Fatalf("refs moved: before %v after %v", before, after)
	}
	id := rows[0].id
	git(t, dir, "fetch", "-q", url, "refs/runs/"+id+"/log:refs/runs/"+id+"/log")
	if l := git(t, dir, "show", "refs/runs/"+id+"/log:log"); !strings.Contains(l, "stopped: the client disconnected") {
		t.Fatalf("run log of %s does not say why it stopped:\n%s", id, l)
	}
}

var runsHeader = regexp.MustCompile(`(?m)^RUN +STATE +BRANCH +PUSHER +WAIT +TIME +NOTE$`)

// TestSwarmRunsListingAndPriority (non-loopback rules): "weir runs"
// shows a repo's runs to a reader and refuses a user without read access;
// the push option priority=N above the pusher's cap (users.json
// max_priority, default 0) is refused naming the cap, and accepted once
// "weir user priority" raised it.
func TestSwarmRunsListingAndPriority(t *testing.T) {
	needSandboxes(t)
	data := t.TempDir()
	keys := t.TempDir()
	aliceKey, carolKey := newKey(t, keys, "alice"), newKey(t, keys, "carol")
	weirCLI(t, "user", "add", "alice", "--key", aliceKey+".pub", "--data", data)
	weirCLI(t, "user", "add", "carol", "--key", carolKey+".pub", "--data", data)
	weirCLI(t, "user", "grant", "alice", "prio", "write", "--data", data)
	tok := strings.TrimSpace(weirCLI(t, "user", "token", "alice", "--data", data))
	s := startWeir(t, data, "--assume-remote")
	url := withCreds(s.URL("prio"), "alice", tok)
	dir := newWorkRepo(t, 0)
	commitFile(t, dir, "models/m.py", sleepModel("m", 0, false))
	code := revParse(t, dir, "HEAD")

	out, err := gitRun(dir, nil, "push", "-o", "priority=3", url, "main")
	if err == nil || !strings.Contains(out, "weir: priority 3 is above what alice may ask for (at most 0)") {
		t.Fatalf("priority above the cap: err %v\n%s", err, out)
	}
	if strings.Contains(out, "weir: run r-") {
		t.Fatalf("the refused push ran:\n%s", out)
	}
	if out, err := gitRun(dir, nil, "push", "-o", "priority=12", url, "main"); err == nil || !strings.Contains(out, "want priority=N with N from 0 (normal) to 9") {
		t.Fatalf("priority=12: err %v\n%s", err, out)
	}
	if got := weirCLI(t, "user", "priority", "alice", "3", "--data", data); !strings.Contains(got, "up to 3") {
		t.Fatalf("weir user priority: %q", got)
	}
	if got := weirCLI(t, "user", "list", "--data", data); !strings.Contains(got, "max-priority=3") {
		t.Fatalf("weir user list: %q", got)
	}
	out = gitWith(t, dir, nil, "push", "-o", "priority=3", url, "main")
	if !strings.Contains(out, "weir: main advanced") {
		t.Fatalf("push at priority 3 after the cap was raised:\n%s", out)
	}

	listing, err := sshWeirAs(t, s, aliceKey, "runs", "prio")
	if err != nil {
		t.Fatalf("weir runs as alice: %v\n%s", err, listing)
	}
	line := regexp.MustCompile(`(?m)^r-[0-9a-f]{16} +succeeded +main@` + code[:7] + ` +alice +[0-9.]+s +[0-9.]+s *$`)
	if !runsHeader.MatchString(listing) || !line.MatchString(listing) || strings.Count(listing, "\n") != 2 {
		t.Fatalf("weir runs prio:\n%s", listing)
	}
	out, err = sshWeirAs(t, s, carolKey, "runs", "prio")
	if err == nil || !strings.Contains(out, `weir runs: repo "prio" not found or not readable`) || strings.Contains(out, "alice") {
		t.Fatalf("weir runs as carol (no grant): err %v\n%s", err, out)
	}
	if out, err := sshWeirAs(t, s, aliceKey, "runs"); err == nil || !strings.Contains(out, "usage: weir runs REPO") {
		t.Fatalf("weir runs without a repo: err %v\n%s", err, out)
	}
}
