package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/bench/internal/host"
)

// phase is what N agents did for one -duration.
type phase struct {
	n       int
	elapsed time.Duration
	cpu     time.Duration // the server's CPU over the phase
	clients time.Duration // the bench's own CPU and its git clients' over the phase (same machine)
	steal   string
	load    string

	mu           sync.Mutex
	latencies    []time.Duration // pushes that ran (succeeded or wasted), branch and main
	runIDs       []string        // every run a push printed
	runsOK       int
	branchOK     int           // branch pushes that landed (one run each)
	wastedRace   int           // runs thrown away: another push won the branch
	wastedWriter int           // runs thrown away: the data ref moved (the REST writer)
	wastedNodes  time.Duration // their nodes' wall time, from the timing lines
	queuedPushes int           // pushes that printed "weir: queued"
	notFF        int           // refused before running: not a fast-forward (retried)
	busy         int           // refused before running: server busy (retried)
	failed       int
	firstFailure string
	retries      int // merge pushes of main tried again
	cycles       []int
	branchAcked  map[int]string // agent -> last branch push the client saw succeed
	mainAcked    []string       // main pushes the client saw succeed
	clientErrs   []error

	waits     []time.Duration // queue wait of this phase's runs, from "weir runs"
	listing   bool
	writerOK  int
	writerBad int
	writerErr string

	ackedCheck, lineageCheck string // "PASS ..." or "FAIL: ..."
}

func newPhase(n int) *phase {
	return &phase{n: n, cycles: make([]int, n), branchAcked: map[int]string{}}
}

func (p *phase) wasted() int { return p.wastedRace + p.wastedWriter }

// runPhase runs n agents and the writer for d.
func (s *swarm) runPhase(n int, d time.Duration, cpuPerRun time.Duration) *phase {
	p := newPhase(n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The listing is polled while the phase runs, so that a short history
	// cannot drop this phase's runs before they are read.
	listed := map[string]time.Duration{}
	var lmu sync.Mutex
	poll := func() {
		if rs, ok := s.listRuns(); ok {
			lmu.Lock()
			p.listing = true
			for id, w := range rs {
				listed[id] = w
			}
			lmu.Unlock()
		}
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		s.writeLoop(ctx, p)
	}()
	go func() {
		defer bg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				poll()
			}
		}
	}()
	t0, s0 := host.CPUTimes()
	cpu0 := s.srv.cpu.read(s.srv.pid)
	cl0, _ := host.CPUUsed()
	began := time.Now()
	deadline := began.Add(d)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		a := s.agents[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := a.cycle(ctx, p, deadline); err != nil {
					p.mu.Lock()
					p.clientErrs = append(p.clientErrs, err)
					p.mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	p.elapsed = time.Since(began)
	p.cpu = s.srv.cpu.read(s.srv.pid) - cpu0
	cl1, _ := host.CPUUsed()
	p.clients = cl1 - cl0
	p.steal, p.load = host.StealSince(t0, s0), host.LoadAvg()
	cancel()
	bg.Wait()
	poll()
	for _, id := range p.runIDs {
		if w, ok := listed[id]; ok {
			p.waits = append(p.waits, w)
		}
	}
	return p
}

// listRuns reads "weir runs swarm" over SSH: run id -> queue wait. ok is
// false when the server has no such command.
func (s *swarm) listRuns() (map[string]time.Duration, bool) {
	cmd := exec.Command("ssh", "-i", s.srv.sshKey, "-p", s.srv.sshPort,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"git@127.0.0.1", "weir", "runs", repoName)
	out, err := cmd.Output()
	if err != nil {
		return nil, false
	}
	return parseRuns(string(out))
}

// parseRuns reads the table hooks/sched.WriteRuns prints: a header
// "RUN STATE BRANCH PUSHER WAIT TIME NOTE", then one run a line.
func parseRuns(text string) (map[string]time.Duration, bool) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "RUN") {
		return nil, false
	}
	hdr := strings.Fields(lines[0])
	col := -1
	for i, h := range hdr {
		if h == "WAIT" {
			col = i
		}
	}
	if col < 0 {
		return nil, false
	}
	out := map[string]time.Duration{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		if w, ok := parseWait(f[col]); ok {
			out[f[0]] = w
		}
	}
	return out, true
}

// parseWait reads the listing's durations: "0.4s", "12s", "3m05s", "1h02m".
func parseWait(s string) (time.Duration, bool) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, true
	}
	if h, m, ok := strings.Cut(s, "h"); ok {
		if d, err := time.ParseDuration(h + "h" + m); err == nil {
			return d, true
		}
	}
	return 0, false
}

// check runs the two checks of the phase against the server's refs.
func (p *phase) check(s *swarm) {
	fail := func(format string, args ...any) string { return "FAIL: " + fmt.Sprintf(format, args...) }
	if _, err := git(s.seed, "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/data/main:refs/remotes/origin/data/main"); err != nil {
		p.ackedCheck = fail("fetch: %v", err)
		p.lineageCheck = p.ackedCheck
		return
	}
	lines := func(args ...string) ([]string, error) {
		out, err := git(s.seed, args...)
		if err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.Fields(out), nil
	}
	// acked: every acknowledged main push is in main; every branch is
	// where its last acknowledged push put it.
	p.ackedCheck = func() string {
		all, err := lines("rev-list", "refs/remotes/origin/main")
		if err != nil {
			return fail("%v", err)
		}
		inMain := map[string]bool{}
		for _, h := range all {
			inMain[h] = true
		}
		missing := 0
		for _, h := range p.mainAcked {
			if !inMain[h] {
				missing++
			}
		}
		if missing > 0 {
			return fail("%d of %d acknowledged main pushes are not in main", missing, len(p.mainAcked))
		}
		for i, want := range p.branchAcked {
			got, err := lines("rev-parse", "refs/remotes/origin/"+agentName(i))
			if err != nil || len(got) != 1 || got[0] != want {
				return fail("%s is at %v, not at its last acknowledged push %s", agentName(i), got, want[:7])
			}
		}
		return fmt.Sprintf("PASS (%d main pushes, %d branches)", len(p.mainAcked), len(p.branchAcked))
	}()
	// lineage: every first-parent commit of main has its data commit.
	p.lineageCheck = func() string {
		code, err := lines("rev-list", "--first-parent", "refs/remotes/origin/main")
		if err != nil {
			return fail("%v", err)
		}
		named, err := lines("log", "--format=%(trailers:key=Code-Commit,valueonly)", "refs/remotes/origin/data/main")
		if err != nil {
			return fail("%v", err)
		}
		has := map[string]bool{}
		for _, h := range named {
			has[h] = true
		}
		missing := 0
		first := ""
		for _, c := range code {
			if !has[c] {
				missing++
				if first == "" {
					first = c[:7]
				}
			}
		}
		if missing > 0 {
			return fail("%d of %d commits of main's first-parent chain have no data commit naming them (first: %s)", missing, len(code), first)
		}
		tip, err := lines("log", "-1", "--format=%(trailers:key=Code-Commit,valueonly)", "refs/remotes/origin/data/main")
		if err != nil || len(tip) != 1 || len(code) == 0 || tip[0] != code[0] {
			return fail("refs/data/main names %v, refs/heads/main is %v", tip, code[:min(1, len(code))])
		}
		return fmt.Sprintf("PASS (%d code commits)", len(code))
	}()
}

func (p *phase) runsPerSec() float64 { return float64(p.runsOK) / p.elapsed.Seconds() }

// workPerSec is the work landed per second: branch runs that landed plus
// merges landed on main, each merge counted as the one run it costs when
// it runs alone (-merge client: it is that run; a merge train lands
// several with one run).
func (p *phase) workPerSec() float64 {
	return float64(p.branchOK+len(p.mainAcked)) / p.elapsed.Seconds()
}

// fairness is max/min completed cycles per agent (0 when one made none).
func (p *phase) fairness() (lo, hi int, ratio float64) {
	lo, hi = p.cycles[0], p.cycles[0]
	for _, c := range p.cycles {
		lo, hi = min(lo, c), max(hi, c)
	}
	if lo == 0 {
		return lo, hi, 0
	}
	return lo, hi, float64(hi) / float64(lo)
}

func (p *phase) summary(r *buildResult) string {
	return fmt.Sprintf("%d runs ok in %v, %d wasted, %d failed, acked %s, lineage %s",
		p.runsOK, p.elapsed.Round(100*time.Millisecond), p.wasted(), p.failed, p.ackedCheck, p.lineageCheck)
}

func (p *phase) waitStr(q float64) string {
	if !p.listing {
		return "n/a"
	}
	if len(p.waits) == 0 {
		return "-"
	}
	return ms(pct(p.waits, q))
}

func ratioStr(r float64) string {
	if r == 0 {
		return "inf"
	}
	return fmt.Sprintf("%.2f", r)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func (r *buildResult) print() {
	fmt.Printf("\n== %s: %s\n", r.name, r.path)
	fmt.Printf("CPU per run %v (%s), CPU-bound limit %.2f runs/s on %d cores; one agent alone: push p50 %v\n",
		ms(r.cpuPerRun), r.cpuSource, r.limit, numCPU(), ms(r.aloneP50))
	fmt.Printf("%4s %7s %6s %7s %6s %9s %9s %9s %9s %7s %7s %9s %8s %7s %6s %9s %6s %5s\n",
		"N", "runs/s", "xlimit", "work/s", "xlimit", "push p50", "push p99", "wait p50", "wait p99",
		"wasted", "race/wr", "wasted s", "cyc/agt", "max/min", "retry", "writer", "acked", "lineage")
	for _, p := range r.phases {
		lo, hi, fr := p.fairness()
		fmt.Printf("%4d %7.2f %6.2f %7.2f %6.2f %9s %9s %9s %9s %7d %7s %9.1f %8s %7s %6d %9s %6s %5s\n",
			p.n, p.runsPerSec(), p.runsPerSec()/r.limit, p.workPerSec(), p.workPerSec()/r.limit,
			ms(pct(p.latencies, 0.5)), ms(pct(p.latencies, 0.99)), p.waitStr(0.5), p.waitStr(0.99),
			p.wasted(), fmt.Sprintf("%d/%d", p.wastedRace, p.wastedWriter),
			(time.Duration(p.wasted()) * r.cpuPerRun).Seconds(),
			fmt.Sprintf("%d/%d", lo, hi), ratioStr(fr), p.retries,
			fmt.Sprintf("%d/%d", p.writerOK, p.writerBad),
			strings.Fields(p.ackedCheck)[0], strings.Fields(p.lineageCheck)[0])
	}
	fmt.Println("  (runs/s: successful runs, branch and main pushes, over the phase's wall time; xlimit: that / the CPU-bound limit;")
	fmt.Println("   work/s: branch runs landed + merges landed on main (each merge counted as the run it costs alone; a train lands several per run);")
	fmt.Println("   push p50/p99: git push wall time of the pushes that ran, landed or wasted; wait: queue wait from 'weir runs';")
	fmt.Println("   wasted: runs that ran and were refused, race = another push won the branch, wr = the data ref moved (REST writer);")
	fmt.Println("   wasted s: wasted runs x CPU per run; cyc/agt: completed cycles (branch run + merge run) per agent, min/max;")
	fmt.Println("   retry: main pushes tried again after a refusal; writer: REST appends ok/refused)")
	for _, p := range r.phases {
		fmt.Printf("  N=%d: %v wall, server CPU %.1f s (%.0f%% of %d cores; %v per successful run), wasted runs' nodes %v wall,\n",
			p.n, p.elapsed.Round(100*time.Millisecond), p.cpu.Seconds(), 100*p.cpu.Seconds()/p.elapsed.Seconds()/float64(numCPU()),
			numCPU(), ms(perRun(p.cpu, p.runsOK)), p.wastedNodes.Round(time.Millisecond))
		if p.cpu > 0 {
			perCPU := float64(p.branchOK+len(p.mainAcked)) / p.cpu.Seconds()
			fmt.Printf("        work landed per server CPU second %.2f (%.2fx of 1 / CPU per run: what xlimit of work/s would be if the server had every core)\n",
				perCPU, perCPU*r.cpuPerRun.Seconds())
		}
		fmt.Printf("        clients (git, the writer, the bench) CPU %.1f s (%.0f%% of %d cores), on the same machine as the server\n",
			p.clients.Seconds(), 100*p.clients.Seconds()/p.elapsed.Seconds()/float64(numCPU()), numCPU())
		fmt.Printf("        pushes that queued %d, refused before running: not a fast-forward %d, busy %d; failed %d; load %s, steal %s\n",
			p.queuedPushes, p.notFF, p.busy, p.failed, p.load, p.steal)
		fmt.Printf("        acked: %s\n        lineage: %s\n", p.ackedCheck, p.lineageCheck)
		if p.firstFailure != "" {
			fmt.Printf("        first failed push: %s\n", indent(p.firstFailure))
		}
		if p.writerErr != "" {
			fmt.Printf("        first refused append: %s\n", p.writerErr)
		}
		for _, err := range p.clientErrs[:min(3, len(p.clientErrs))] {
			fmt.Printf("        client error: %s\n", indent(err.Error()))
		}
	}
	r.printGoals()
	if len(r.serverNotes) > 0 {
		fmt.Println("  server warnings and errors (count x message):")
		for _, n := range r.serverNotes[:min(10, len(r.serverNotes))] {
			fmt.Println("    " + n)
		}
	}
}

func (r *buildResult) printGoals() {
	var g *phase
	for _, p := range r.phases {
		if p.n <= goalN && (g == nil || p.n > g.n) {
			g = p
		}
	}
	if g == nil {
		g = r.phases[0]
	}
	note := ""
	if g.n != goalN {
		note = fmt.Sprintf(" (no N=%d phase: at N=%d)", goalN, g.n)
	}
	_, _, fr := g.fairness()
	writerWasted := 0
	for _, p := range r.phases {
		writerWasted += p.wastedWriter
	}
	fmt.Printf("  goals%s:\n", note)
	fmt.Printf("    %s zero wasted runs at N=%d: %d\n", passFail(g.wasted() == 0), g.n, g.wasted())
	fmt.Printf("    %s fairness max/min cycles per agent <= %.1f: %s\n", passFail(fr > 0 && fr <= goalFairness), goalFairness, ratioStr(fr))
	fmt.Printf("    %s throughput >= %.1fx the CPU-bound limit: work landed %.2f runs/s = %.2fx of %.2f (runs that ran: %.2f/s = %.2fx)\n",
		passFail(g.workPerSec() >= goalThroughput*r.limit), goalThroughput, g.workPerSec(), g.workPerSec()/r.limit, r.limit,
		g.runsPerSec(), g.runsPerSec()/r.limit)
	fmt.Printf("    %s the writer never starves a run (runs refused because the data moved, every N): %d\n", passFail(writerWasted == 0), writerWasted)
	allPass := true
	for _, p := range r.phases {
		allPass = allPass && strings.HasPrefix(p.ackedCheck, "PASS") && strings.HasPrefix(p.lineageCheck, "PASS")
	}
	fmt.Printf("    %s every acknowledged push in main, every data commit beside its code (every N)\n", passFail(allPass))
}

func printRatios(w, peer *buildResult) {
	fmt.Printf("\n== weir/peer, same invocation (%s vs %s)\n", w.path, peer.path)
	fmt.Printf("CPU per run %.2fx (%v vs %v)\n", w.cpuPerRun.Seconds()/peer.cpuPerRun.Seconds(), ms(w.cpuPerRun), ms(peer.cpuPerRun))
	fmt.Printf("%4s %12s %12s %12s %16s\n", "N", "runs/s", "push p50", "push p99", "wasted (w/peer)")
	for i, p := range w.phases {
		if i >= len(peer.phases) {
			break
		}
		q := peer.phases[i]
		div := func(a, b float64) string {
			if b == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx", a/b)
		}
		fmt.Printf("%4d %12s %12s %12s %16s\n", p.n, div(p.runsPerSec(), q.runsPerSec()),
			div(pct(p.latencies, 0.5).Seconds(), pct(q.latencies, 0.5).Seconds()),
			div(pct(p.latencies, 0.99).Seconds(), pct(q.latencies, 0.99).Seconds()),
			fmt.Sprintf("%d/%d", p.wasted(), q.wasted()))
	}
}

func perRun(d time.Duration, runs int) time.Duration {
	if runs == 0 {
		return 0
	}
	return d / time.Duration(runs)
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n          ")
}
