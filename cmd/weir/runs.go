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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks"
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
func newScheduler(rf runFlags, log *slog.Logger, obs sched.Observer) (*sched.Scheduler, error) {
	cfg, err := rf.config()
	if err != nil {
		return nil, err
	}
	cfg.Observer = obs
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

// runsSource is where runs are read from: the scheduler (queued, running
// and the last --runs-history that ended, lost at restart) and the refs
// each ended run keeps (refs/runs/<id>/{code,data,log}, kept until
// deleted).
type runsSource struct {
	sched *sched.Scheduler
	cat   *catalog.Catalog
	objs  *objects.Store
}

// runsFilter is what "weir runs" and GET /api/repos/<repo>/runs select.
type runsFilter struct {
	branch string
	state  string
	limit  int
}

const runsUsage = "usage: weir runs REPO [--branch B] [--state queued|running|succeeded|failed|cancelled|refused] [--limit N]"

// parseRunsArgs reads "REPO [flags]" (flags before or after REPO).
func parseRunsArgs(args []string, out io.Writer) (string, runsFilter, error) {
	var f runsFilter
	fs := flag.NewFlagSet("runs", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.branch, "branch", "", "only runs of this branch")
	fs.StringVar(&f.state, "state", "", "only runs in this state: queued, running, succeeded, failed, cancelled, refused")
	fs.IntVar(&f.limit, "limit", 0, "at most N runs, newest first (0: all)")
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
	return repo, f, f.check()
}

func (f runsFilter) check() error {
	if f.limit < 0 {
		return fmt.Errorf("--limit %d: want 0 (all) or more", f.limit)
	}
	if f.state != "" && !slices.Contains(stateNames(), f.state) {
		return fmt.Errorf("--state %q: want one of %s", f.state, strings.Join(stateNames(), ", "))
	}
	return nil
}

func stateNames() []string {
	var ns []string
	for st := sched.Queued; st.Final() || st <= sched.Running; st++ {
		ns = append(ns, st.String())
	}
	return ns
}

// apply returns the runs f selects, newest first as given (runs is not
// changed).
func (f runsFilter) apply(runs []sched.RunInfo) []sched.RunInfo {
	runs = slices.DeleteFunc(slices.Clone(runs), func(r sched.RunInfo) bool {
		if f.state != "" && r.State.String() != f.state {
			return true
		}
		return f.branch != "" && !slices.ContainsFunc(r.Targets, func(t sched.Target) bool { return t.Branch == f.branch })
	})
	if f.limit > 0 && len(runs) > f.limit {
		runs = runs[:f.limit]
	}
	return runs
}

// sshRuns is "weir runs REPO [flags]" over SSH: the repo's runs, newest
// first, as selected (runsSource.list).
func (rs *runsSource) sshRuns(ctx context.Context, req *gitserver.SSHRequest) int {
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
	list, err := rs.list(ctx, repo, f)
	if err != nil {
		fmt.Fprintf(req.Stderr, "weir runs: %s\n", rs.cat.Redact(err.Error()))
		return 1
	}
	if err := sched.WriteRuns(req.Stdout, list); err != nil {
		return 1
	}
	return 0
}

// list returns the runs of repo f selects, newest first: first what the
// scheduler holds (queued, running, and the last --runs-history that
// ended), then the runs kept under refs/runs/ it no longer holds (after a
// restart, or past its history), which are older than those. The kept
// runs are ordered by their ids alone (hooks.RunID.Time); only the logs
// of those it walks through are read: with --limit N and no filter, N
// commits at most (ids of the older, random-only form are read to be
// placed).
func (rs *runsSource) list(ctx context.Context, repo objects.RepoName, f runsFilter) ([]sched.RunInfo, error) {
	mem := rs.sched.Runs(sched.Repo(repo))
	out := f.apply(mem)
	if f.limit > 0 && len(out) >= f.limit {
		return out, nil
	}
	seen := make(map[string]bool, len(mem))
	for _, ri := range mem {
		seen[string(ri.ID)] = true
	}
	kept, err := hooks.ListKeptRuns(ctx, rs.cat.Refs(), repo)
	if err != nil {
		return nil, err
	}
	kept = slices.DeleteFunc(kept, func(k hooks.KeptRun) bool { return seen[string(k.ID)] })
	// Ids of the older form carry no time: read them to place them by
	// when they ended.
	records := map[hooks.RunID]hooks.RunRecord{}
	var dated, undated []hooks.KeptRun
	for _, k := range kept {
		if !k.Made.IsZero() {
			dated = append(dated, k)
			continue
		}
		rec, err := hooks.ReadKeptRun(ctx, rs.cat.Refs(), rs.objs, repo, k)
		if err != nil {
			continue // not a log weir wrote; listing skips it
		}
		records[k.ID], k.Made = rec, rec.Ended
		undated = append(undated, k)
	}
	if len(undated) > 0 {
		dated = append(dated, undated...)
		slices.SortStableFunc(dated, func(a, b hooks.KeptRun) int { return b.Made.Compare(a.Made) })
	}
	for _, k := range dated {
		if f.limit > 0 && len(out) >= f.limit {
			break
		}
		rec, ok := records[k.ID]
		if !ok {
			var err error
			if rec, err = hooks.ReadKeptRun(ctx, rs.cat.Refs(), rs.objs, repo, k); err != nil {
				continue
			}
		}
		ri := keptInfo(repo, rec, k)
		if len(f.apply([]sched.RunInfo{ri})) == 1 {
			out = append(out, ri)
		}
	}
	return out, nil
}

// keptInfo is a kept run as the listing shows it.
func keptInfo(repo objects.RepoName, rec hooks.RunRecord, k hooks.KeptRun) sched.RunInfo {
	ri := sched.RunInfo{ID: sched.RunID(rec.ID), Repo: sched.Repo(repo), Pusher: sched.Identity(rec.Pusher),
		State: sched.Failed, Arrived: k.Made, Forgotten: true}
	if strings.HasPrefix(rec.Status, "ok") {
		ri.State = sched.Succeeded
	}
	if rec.Status != "ok" && rec.Status != "failed" {
		ri.Note = rec.Status
	}
	if rec.Branch != "" {
		ri.Targets = []sched.Target{{Branch: rec.Branch, Code: sched.Commit(rec.Code)}}
	}
	return ri
}

// readableRepo parses name ("team/demo" or "team/demo.git") and checks
// the caller may read it.
func readableRepo(name string, can func(objects.RepoName, access.Permission) bool) (objects.RepoName, bool) {
	repo, err := objects.ParseRepoName(strings.TrimSuffix(name, ".git"))
	return repo, err == nil && can(repo, access.PermRead)
}

// runView is one run as "weir run" prints it and the JSON API returns it.
type runView struct {
	ID     string `json:"id"`
	Repo   string `json:"repo"`
	State  string `json:"state"` // the scheduler's, else "succeeded" or "failed" from the log
	Status string `json:"status,omitempty"`
	Branch string `json:"branch,omitempty"`
	Pusher string `json:"pusher,omitempty"`
	Code   string `json:"code_commit,omitempty"`
	Data   string `json:"data_commit,omitempty"`
	Note   string `json:"note,omitempty"`
	// Arrived, QueueWaitMS and DurationMS come from the scheduler: absent
	// for a run it no longer remembers (after a restart, or past --runs-history).
	Arrived     *time.Time `json:"arrived,omitempty"`
	QueueWaitMS *int64     `json:"queue_wait_ms,omitempty"`
	DurationMS  *int64     `json:"duration_ms,omitempty"`
	Ended       *time.Time `json:"ended,omitempty"`
	// Kept is where the run is kept: "refs/runs/<id>/", or "" while it
	// runs or when it kept nothing.
	Kept   string      `json:"kept,omitempty"`
	Nodes  []nodeView  `json:"nodes"`
	Tables []tableView `json:"tables"`
	Log    *string     `json:"log,omitempty"`
}

type nodeView struct {
	Node   string `json:"node"`
	Result string `json:"result"`
	WallMS int64  `json:"wall_ms"`
}

type tableView struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// errNoRun is a run the repo neither runs nor keeps.
var errNoRun = errors.New("no such run")

// run finds run id ("latest": the newest, of branch when given) of repo
// in the scheduler and the refs; withLog adds its log.
func (rs *runsSource) run(ctx context.Context, repo objects.RepoName, id, branch string, withLog bool) (runView, error) {
	var info *sched.RunInfo
	infos := rs.sched.Runs(sched.Repo(repo))
	if id == "latest" {
		// The newest of the scheduler's, else of the kept runs: one
		// log read (more only with --branch, or for ids of the older form).
		got, err := rs.list(ctx, repo, runsFilter{branch: branch, limit: 1})
		if err != nil {
			return runView{}, err
		}
		if len(got) == 0 {
			return runView{}, fmt.Errorf("%w: %s has no runs%s yet", errNoRun, repo, onBranch(branch))
		}
		id = string(got[0].ID)
		if i := slices.IndexFunc(infos, func(r sched.RunInfo) bool { return string(r.ID) == id }); i >= 0 {
			info = &infos[i]
		}
	} else if !hooks.ValidRunID(id) {
		return runView{}, fmt.Errorf("%w: %q is not a run id (r-<hex>, as weir runs lists, or latest)", errNoRun, id)
	} else if i := slices.IndexFunc(infos, func(r sched.RunInfo) bool { return string(r.ID) == id }); i >= 0 {
		info = &infos[i]
	}
	v := runView{ID: id, Repo: string(repo), Nodes: []nodeView{}, Tables: []tableView{}}
	rec, text, err := hooks.ReadRun(ctx, rs.cat.Refs(), rs.objs, repo, hooks.RunID(id), withLog)
	switch {
	case err == nil:
		v.Kept = "refs/runs/" + id + "/"
		v.Status, v.Branch, v.Pusher = rec.Status, rec.Branch, rec.Pusher
		v.State = "failed"
		if strings.HasPrefix(rec.Status, "ok") {
			v.State = "succeeded"
		}
		if !rec.Code.IsZero() {
			v.Code = rec.Code.String()
		}
		if !rec.Data.IsZero() {
			v.Data = rec.Data.String()
			v.Tables = rs.tables(ctx, repo, rec.Data, id)
		}
		ended := rec.Ended
		v.Ended = &ended
		for _, n := range rec.Nodes {
			v.Nodes = append(v.Nodes, nodeView{Node: n.Node, Result: n.Result, WallMS: n.Wall.Milliseconds()})
		}
		if withLog {
			v.Log = &text
		}
	case errors.Is(err, hooks.ErrNoRun) && info != nil:
	case errors.Is(err, hooks.ErrNoRun):
		return runView{}, fmt.Errorf("%w: %s has no run %s (weir runs %s lists them)", errNoRun, repo, id, repo)
	default:
		return runView{}, err
	}
	if info != nil {
		v.State, v.Note = info.State.String(), info.Note
		if v.Branch == "" && len(info.Targets) > 0 {
			v.Branch, v.Code = info.Targets[0].Branch, info.Targets[0].Code.String()
		}
		if v.Pusher == "" {
			v.Pusher = string(info.Pusher)
		}
		arrived, wait, dur := info.Arrived.UTC(), info.Wait.Milliseconds(), info.Duration.Milliseconds()
		v.Arrived, v.QueueWaitMS, v.DurationMS = &arrived, &wait, &dur
	}
	return v, nil
}

func onBranch(b string) string {
	if b == "" {
		return ""
	}
	return " on " + b
}

// tables are the tables of data commit h that run id wrote, with rows.
func (rs *runsSource) tables(ctx context.Context, repo objects.RepoName, h objects.Hash, id string) []tableView {
	tabs, err := rs.cat.Tables(ctx, repo, h)
	out := []tableView{}
	if err != nil {
		return out
	}
	for t, p := range tabs {
		if p.Run == id {
			out = append(out, tableView{Table: t.String(), Rows: p.Rows})
		}
	}
	slices.SortFunc(out, func(a, b tableView) int { return strings.Compare(a.Table, b.Table) })
	return out
}

// writeRun prints v for "weir run": one "key: value" line each, the
// nodes and tables as indented lines, then the log. Client-given text
// (branch, pusher, node names, the log) has control characters escaped.
func writeRun(w io.Writer, v runView) {
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
func (rs *runsSource) sshRun(ctx context.Context, req *gitserver.SSHRequest) int {
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
	v, err := rs.run(ctx, repo, pos[1], *branch, true)
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
func (rs *runsSource) handler(acc *access.Access) http.Handler {
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
			v, err := rs.run(r.Context(), repo, runID, q.Get("branch"), true)
			if errors.Is(err, errNoRun) {
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
		f := runsFilter{branch: q.Get("branch"), state: q.Get("state")}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil {
				apiError(w, http.StatusBadRequest, "limit: want a number")
				return
			}
			f.limit = n
		}
		if err := f.check(); err != nil {
			apiError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "--"))
			return
		}
		infos, err := rs.list(r.Context(), repo, f)
		if err != nil {
			apiError(w, http.StatusInternalServerError, rs.cat.Redact(err.Error()))
			return
		}
		list := []runView{}
		for _, ri := range infos {
			v := runView{ID: string(ri.ID), Repo: string(repo), State: ri.State.String(), Pusher: string(ri.Pusher), Note: ri.Note}
			if len(ri.Targets) > 0 {
				v.Branch, v.Code = ri.Targets[0].Branch, ri.Targets[0].Code.String()
			}
			if ri.Forgotten {
				v.Kept = "refs/runs/" + v.ID + "/"
			} else {
				arrived, wait, dur := ri.Arrived.UTC(), ri.Wait.Milliseconds(), ri.Duration.Milliseconds()
				v.Arrived, v.QueueWaitMS, v.DurationMS = &arrived, &wait, &dur
			}
			list = append(list, v)
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
