package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/runs"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/objects"
)

// runFlags are weir serve's configuration of the run queue (hooks/sched):
// how many runs at once, how many may wait, in what order, and the node
// pool the running nodes share.
type runFlags struct {
	runs, queue  int
	policy       string
	poolCPU      float64
	poolMemoryMB int64
	nodeCPU      float64
	nodeMemoryMB int64
	history      int
	mergeTrain   int
}

func (r *runFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&r.runs, "runs", 0, "run queue: most pipeline runs (pushes that run nodes) admitted at once; more wait in the queue (0: twice the cores, at least 2, no more than the node pool's memory holds of --node-default-memory-mb)")
	fs.IntVar(&r.queue, "run-queue", sched.DefaultMaxQueue, "run queue: most pushes waiting for a run slot or for a run of their branch; past it a push is refused at once with 'server busy' (0: no queue, refuse any push that cannot run at once)")
	fs.StringVar(&r.policy, "run-policy", sched.PolicyNames()[0], "run queue: the order waiting runs start in; "+sched.PolicyHelp())
	fs.Float64Var(&r.poolCPU, "node-pool-cpus", 0, "node pool: cores the running nodes of all runs share; a node holds its weir.toml cpus (or --node-default-cpus) while it runs (0: every core)")
	fs.Int64Var(&r.poolMemoryMB, "node-pool-memory-mb", 0, "node pool: memory in MiB the running nodes of all runs share; a node holds its weir.toml memory_mb (or --node-default-memory-mb) while it runs (0: the machine's memory less 1 GiB)")
	fs.Float64Var(&r.nodeCPU, "node-default-cpus", sched.DefaultNodeCPU, "node pool: cores a node that declares no cpus in weir.toml holds")
	fs.Int64Var(&r.nodeMemoryMB, "node-default-memory-mb", sched.DefaultNodeMemory>>20, "node pool: MiB a node that declares no memory_mb in weir.toml holds")
	fs.IntVar(&r.history, "runs-history", sched.DefaultHistory, "how many ended runs 'weir runs <repo>' remembers (over all repos)")
	fs.IntVar(&r.mergeTrain, "merge-train", 16, "merge queue: most merge requests into one branch (git push origin HEAD:refs/merge/<b>) that wait together and are merged and run once, as a train; a train whose run fails merges them one by one (below 2: every merge request runs alone)")
}

// config is the scheduler's Config from the flags.
func (r *runFlags) config() (sched.Config, error) {
	switch {
	case r.runs < 0:
		return sched.Config{}, fmt.Errorf("--runs %d: want 0 (the default) or more", r.runs)
	case r.queue < 0:
		return sched.Config{}, fmt.Errorf("--run-queue %d: want 0 (no queue) or more", r.queue)
	case r.poolCPU < 0 || r.poolMemoryMB < 0 || r.nodeCPU < 0 || r.nodeMemoryMB < 0:
		return sched.Config{}, fmt.Errorf("node pool sizes must not be negative")
	case r.poolMemoryMB > 1<<42 || r.nodeMemoryMB > 1<<42:
		return sched.Config{}, fmt.Errorf("node pool memory out of range")
	}
	cfg := sched.Config{
		MaxRuns:     r.runs,
		MaxQueue:    r.queue,
		CPU:         r.poolCPU,
		Memory:      r.poolMemoryMB << 20,
		NodeDefault: sched.Demand{CPU: r.nodeCPU, Memory: r.nodeMemoryMB << 20},
		Policy:      r.policy,
		History:     r.history,
	}
	if r.queue == 0 {
		cfg.MaxQueue = -1 // sched: negative is no queue, zero its default
	}
	return cfg, nil
}

// newScheduler builds the server's one run queue and logs its sizes
// (those taken from the machine included).
func newScheduler(rf runFlags, log *slog.Logger) (*sched.Scheduler, error) {
	cfg, err := rf.config()
	if err != nil {
		return nil, err
	}
	s, err := sched.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("run queue: %w", err)
	}
	c := s.Config()
	log.Info("run queue", "runs", c.MaxRuns, "queue", c.MaxQueue, "policy", c.Policy,
		"pool_cpus", c.CPU, "pool_memory_mb", c.Memory>>20,
		"node_default_cpus", c.NodeDefault.CPU, "node_default_memory_mb", c.NodeDefault.Memory>>20,
		"keep_alive", c.KeepAlive, "history", c.History)
	return s, nil
}

// runsAPI is "weir run" over SSH and the runs JSON API over HTTP, on
// the one runs.Source.
type runsAPI struct {
	src *runs.Source
	cat *catalog.Catalog // for Redact
}

const runsUsage = "usage: weir runs REPO [--branch B] [--state queued|running|succeeded|failed|cancelled|refused] [--limit N]"

// parseRunsArgs reads "REPO [flags]" (flags before or after REPO).
func parseRunsArgs(args []string, out io.Writer) (string, runs.Filter, error) {
	var f runs.Filter
	fs := flag.NewFlagSet("runs", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.Branch, "branch", "", "only runs of this branch")
	fs.StringVar(&f.State, "state", "", "only runs in this state: queued, running, succeeded, failed, cancelled, refused")
	fs.IntVar(&f.Limit, "limit", 0, "at most N runs, newest first (0: all)")
	fs.Usage = func() { fmt.Fprintln(out, runsUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return "", f, err
	}
	if fs.NArg() == 0 {
		return "", f, errors.New(runsUsage)
	}
	repo := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return "", f, err
	}
	if fs.NArg() != 0 {
		return "", f, fmt.Errorf("unexpected %q; %s", fs.Arg(0), runsUsage)
	}
	return repo, f, f.Check()
}

// sshRuns is "weir runs REPO [flags]" over SSH: the repo's runs the
// scheduler holds (queued, running) and the last that ended, newest
// first, as selected.
func sshRuns(s *sched.Scheduler, req *gitserver.SSHRequest) int {
	name, f, err := parseRunsArgs(req.Args[1:], req.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(req.Stderr, "weir runs: %v\n", err)
		return 2
	}
	repo, ok := readableRepo(name, req.Can)
	if !ok {
		fmt.Fprintf(req.Stderr, "weir runs: repo %q not found or not readable\n", name)
		return 1
	}
	if err := sched.WriteRuns(req.Stdout, f.Apply(s.Runs(sched.Repo(repo)))); err != nil {
		return 1
	}
	return 0
}

// readableRepo parses name ("team/demo" or "team/demo.git") and checks
// the caller may read it.
func readableRepo(name string, can func(objects.RepoName, access.Permission) bool) (objects.RepoName, bool) {
	repo, err := objects.ParseRepoName(strings.TrimSuffix(name, ".git"))
	return repo, err == nil && can(repo, access.PermRead)
}

// runsCommand is sshRuns as an SSH command.
func runsCommand(s *sched.Scheduler) gitserver.SSHCommand {
	return func(_ context.Context, req *gitserver.SSHRequest) int { return sshRuns(s, req) }
}

// writeRun prints v for "weir run": one "key: value" line each, the
// nodes and tables as indented lines, then the log. Client-given text
// (branch, pusher, node names, the log) has control characters escaped.
func writeRun(w io.Writer, v runs.View) {
	line := func(k, val string) {
		if val != "" {
			fmt.Fprintf(w, "%-11s %s\n", k+":", hooks.Neutralise(strings.ReplaceAll(val, "\n", " ")))
		}
	}
	line("run", v.ID)
	line("repo", v.Repo)
	state := v.State
	if v.Status != "" && v.Status != "ok" && v.Status != "failed" {
		state += " (" + v.Status + ")"
	}
	line("state", state)
	line("note", v.Note)
	line("branch", v.Branch)
	line("pusher", v.Pusher)
	line("code", v.Code)
	line("data", v.Data)
	if v.QueueWaitMS != nil {
		line("queue wait", (time.Duration(*v.QueueWaitMS) * time.Millisecond).String())
		line("duration", (time.Duration(*v.DurationMS) * time.Millisecond).String())
	}
	if v.Ended != nil {
		line("ended", v.Ended.Format(time.RFC3339))
	}
	if v.Kept != "" {
		line("kept", v.Kept+"{code,data,log} (git fetch origin '"+v.Kept+"*:"+v.Kept+"*')")
	} else {
		line("kept", "not yet (a run is kept as refs/runs/<id>/ when it ends)")
	}
	if len(v.Nodes) > 0 {
		fmt.Fprintln(w, "nodes:")
		for _, n := range v.Nodes {
			fmt.Fprintf(w, "  %-30s %8s  %s\n", hooks.Neutralise(n.Node), (time.Duration(n.WallMS) * time.Millisecond).String(), hooks.Neutralise(n.Result))
		}
	}
	if len(v.Tables) > 0 {
		fmt.Fprintln(w, "tables written:")
		for _, t := range v.Tables {
			fmt.Fprintf(w, "  %-30s %d rows\n", t.Table, t.Rows)
		}
	}
	if v.Log != nil {
		fmt.Fprintln(w, "log:")
		io.WriteString(w, hooks.Neutralise(*v.Log))
	}
}

const runUsage = "usage: weir run REPO ID|latest [--branch B] [--json]"

// sshRun is "weir run REPO ID|latest [--branch B] [--json]" over SSH.
func (rs *runsAPI) sshRun(ctx context.Context, req *gitserver.SSHRequest) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(req.Stderr)
	branch := fs.String("branch", "", "with latest: the newest run of this branch")
	asJSON := fs.Bool("json", false, "print the run as JSON (as GET /api/repos/REPO/runs/ID)")
	fs.Usage = func() { fmt.Fprintln(req.Stderr, runUsage); fs.PrintDefaults() }
	var pos []string
	args := req.Args[1:]
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fmt.Fprintln(req.Stderr, runUsage)
		return 2
	}
	repo, ok := readableRepo(pos[0], req.Can)
	if !ok {
		fmt.Fprintf(req.Stderr, "weir run: repo %q not found or not readable\n", pos[0])
		return 1
	}
	v, err := rs.src.Run(ctx, repo, pos[1], *branch, true)
	if err != nil {
		fmt.Fprintf(req.Stderr, "weir run: %s\n", rs.cat.Redact(err.Error()))
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(req.Stdout)
		enc.SetIndent("", "  ")
		if enc.Encode(v) != nil {
			return 1
		}
		return 0
	}
	writeRun(req.Stdout, v)
	return 0
}

// The JSON API of runs, on the HTTP listener, with the same identities
// and read grants as Git over HTTP (anonymous only where Git allows it):
//
//	GET /api/repos/<repo>/runs[?branch=B&state=S&limit=N]  {"runs": [run without nodes, tables, log]}
//	GET /api/repos/<repo>/runs/<id|latest>[?branch=B]      run, with nodes, tables and log
//
// A repo the caller may not read is 404, as one that does not exist.
func (rs *runsAPI) handler(acc *access.Access) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			apiError(w, http.StatusMethodNotAllowed, "only GET")
			return
		}
		id, ok := acc.HTTPIdentity(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="weir"`)
			apiError(w, http.StatusUnauthorized, "authentication required: a token as the password, or Authorization: Bearer <token>")
			return
		}
		path := strings.TrimPrefix(r.URL.Path, "/api/repos/")
		name, runID, one := "", "", false
		if n, ok := strings.CutSuffix(path, "/runs"); ok {
			name = n
		} else if i := strings.LastIndex(path, "/runs/"); i > 0 {
			name, runID, one = path[:i], path[i+len("/runs/"):], true
		} else {
			apiError(w, http.StatusNotFound, "not found: GET /api/repos/<repo>/runs or /api/repos/<repo>/runs/<id|latest>")
			return
		}
		repo, ok := readableRepo(name, func(repo objects.RepoName, p access.Permission) bool { return acc.Can(id, repo, p) })
		if !ok {
			apiError(w, http.StatusNotFound, fmt.Sprintf("repo %q not found or not readable", name))
			return
		}
		q := r.URL.Query()
		if one {
			v, err := rs.src.Run(r.Context(), repo, runID, q.Get("branch"), true)
			if errors.Is(err, runs.ErrNoRun) {
				apiError(w, http.StatusNotFound, err.Error())
				return
			}
			if err != nil {
				apiError(w, http.StatusInternalServerError, rs.cat.Redact(err.Error()))
				return
			}
			writeJSON(w, v)
			return
		}
		f := runs.Filter{Branch: q.Get("branch"), State: q.Get("state")}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil {
				apiError(w, http.StatusBadRequest, "limit: want a number")
				return
			}
			f.Limit = n
		}
		if err := f.Check(); err != nil {
			apiError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "--"))
			return
		}
		list := rs.src.Queued(repo, f)
		for i := range list {
			list[i].Nodes, list[i].Tables = nil, nil // the list has neither: null, as always
		}
		writeJSON(w, map[string]any{"runs": list})
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
