package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// agent is one simulated agent: a C git clone and the version it last
// wrote on its own line of models/agents.sql.
type agent struct {
	i       int
	dir     string
	version int
}

// What a push's output says (remote lines, then git's own).
var (
	runLine      = regexp.MustCompile(`weir: run (r-[0-9a-f]+) on `)
	timingLine   = regexp.MustCompile(`weir: timing: plan (\d+) ms, nodes (\d+) ms \(run (\d+) ms, sandbox (\d+) ms\), commit (\d+) ms`)
	queuedLine   = regexp.MustCompile(`weir: queued`)
	movedInRun   = "the branch moved while this push was checked" // gitserver's reasonMovedDuringRun: the data ref moved
	busyText     = "server busy"
	notFFPattern = regexp.MustCompile(`\((fetch first|non-fast-forward)\)|no longer a fast-forward|while this push waited`)
)

// pushOutcome is what one git push came to.
type pushOutcome int

const (
	pushOK      pushOutcome = iota
	pushWasted              // a run ran and the push was refused anyway
	pushRefused             // refused before any run: not a fast-forward, a recheck, busy
	pushFailed              // anything else (a node failed, git failed): a bench or server bug
)

// push runs git push with -o timing and classifies it into p.
func (a *agent) push(p *phase, refspec string) (pushOutcome, string) {
	began := time.Now()
	out, err := git(a.dir, "push", "-o", "timing", "origin", refspec)
	took := time.Since(began)
	ids := runLine.FindAllStringSubmatch(out, -1)
	var runMs time.Duration
	for _, m := range timingLine.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.Atoi(m[2]) // nodes, wall
		runMs += time.Duration(v) * time.Millisecond
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.runIDs = append(p.runIDs, id[1])
	}
	if queuedLine.MatchString(out) {
		p.queuedPushes++
	}
	switch {
	case err == nil:
		p.latencies = append(p.latencies, took)
		p.runsOK += len(ids)
		return pushOK, out
	case len(ids) > 0 && strings.Contains(out, "did not advance"):
		p.latencies = append(p.latencies, took)
		p.wastedNodes += runMs
		if strings.Contains(out, movedInRun) {
			p.wastedWriter += len(ids)
		} else {
			p.wastedRace += len(ids)
		}
		return pushWasted, out
	case len(ids) == 0 && strings.Contains(out, busyText):
		p.busy++
		return pushRefused, out
	case len(ids) == 0 && notFFPattern.MatchString(out):
		p.notFF++
		return pushRefused, out
	}
	p.failed++
	if p.firstFailure == "" {
		p.firstFailure = fmt.Sprintf("git push %s: %v\n%s", refspec, err, out)
	}
	return pushFailed, out
}

// cycle is one turn of the agent's loop: branch, change, push the branch,
// then land it on main, retrying until it lands or the deadline passes
// (zero: none): with -merge client, merge into main and push main (a
// refused push fetches, merges and pushes again); with -merge queue, push
// the branch to refs/merge/main and let the server merge it. It returns an error only when git
// itself fails on the client.
func (a *agent) cycle(ctx context.Context, p *phase, deadline time.Time) error {
	late := func() bool { return !deadline.IsZero() && time.Now().After(deadline) }
	run := func(args ...string) error {
		if out, err := git(a.dir, args...); err != nil {
			return fmt.Errorf("%s: git %s: %v\n%s", agentName(a.i), strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("fetch", "-q", "origin"); err != nil {
		return err
	}
	if err := run("checkout", "-q", "-B", "w", "origin/main"); err != nil {
		return err
	}
	// Its own file: merges of different agents never touch the same
	// path, so neither git's line merge (client) nor the merge queue's
	// tree merge (queue) ever conflicts; the pipeline is the same for
	// every run.
	a.version++
	name := filepath.Join("agents", agentName(a.i)+".txt")
	if err := os.MkdirAll(filepath.Join(a.dir, "agents"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.dir, name), []byte(fmt.Sprintf("%s version %d\n", agentName(a.i), a.version)), 0o644); err != nil {
		return err
	}
	if err := run("add", name); err != nil {
		return err
	}
	if err := run("commit", "-q", "-m", fmt.Sprintf("%s: version %d", agentName(a.i), a.version)); err != nil {
		return err
	}
	branch := "refs/heads/" + agentName(a.i)
	for {
		outcome, _ := a.push(p, "+w:"+branch)
		if outcome == pushOK {
			break
		}
		if outcome == pushFailed || late() || ctx.Err() != nil {
			return nil
		}
		jitter(200 * time.Millisecond) // busy, or wasted: try again
	}
	w, err := git(a.dir, "rev-parse", "w")
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.branchAcked[a.i] = strings.TrimSpace(w)
	p.branchOK++
	p.mu.Unlock()
	if *mergeFlag == "queue" {
		return a.mergeQueue(ctx, p, strings.TrimSpace(w), late)
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			p.mu.Lock()
			p.retries++
			p.mu.Unlock()
			if err := run("fetch", "-q", "origin"); err != nil {
				return err
			}
		}
		if err := run("checkout", "-q", "-B", "m", "origin/main"); err != nil {
			return err
		}
		if err := run("merge", "-q", "--no-ff", "-m", fmt.Sprintf("merge %s version %d", agentName(a.i), a.version), "w"); err != nil {
			return err
		}
		outcome, out := a.push(p, "m:refs/heads/main")
		if outcome == pushOK {
			sha, err := git(a.dir, "rev-parse", "m")
			if err != nil {
				return err
			}
			p.mu.Lock()
			p.mainAcked = append(p.mainAcked, strings.TrimSpace(sha))
			p.cycles[a.i]++
			p.mu.Unlock()
			return nil
		}
		if outcome == pushFailed || late() || ctx.Err() != nil {
			return nil
		}
		if strings.Contains(out, busyText) {
			jitter(200 * time.Millisecond)
		}
	}
}

// mergeQueue lands the agent's branch w (commit sha) on main through the
// server's merge queue: git push origin w:refs/merge/main, which returns
// once main advanced (or why not). Only a refusal that is no conflict
// (server busy, main moved by a push that ran no pipeline) is retried;
// the client never fetches or merges.
func (a *agent) mergeQueue(ctx context.Context, p *phase, sha string, late func() bool) error {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			p.mu.Lock()
			p.retries++
			p.mu.Unlock()
		}
		outcome, _ := a.push(p, "w:refs/merge/main")
		if outcome == pushOK {
			p.mu.Lock()
			p.mainAcked = append(p.mainAcked, sha)
			p.cycles[a.i]++
			p.mu.Unlock()
			return nil
		}
		if outcome == pushFailed || late() || ctx.Err() != nil {
			return nil
		}
		jitter(200 * time.Millisecond)
	}
}
