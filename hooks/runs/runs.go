package runs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/objects"
)

// Source is where runs are read from: the scheduler (queued, running and
// the last --runs-history that ended, lost at restart) and the refs each
// ended run keeps (refs/runs/<id>/{code,data,log}, kept until deleted).
type Source struct {
	sched *sched.Scheduler
	cat   *catalog.Catalog
	objs  *objects.Store
}

// NewSource reads runs from s (may be nil: no queue, kept runs only) and
// the refs and objects under cat.
func NewSource(s *sched.Scheduler, cat *catalog.Catalog, objs *objects.Store) *Source {
	return &Source{sched: s, cat: cat, objs: objs}
}

// View is one run as "weir run" prints it and the JSON API returns it.
type View struct {
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
	Kept   string  `json:"kept,omitempty"`
	Nodes  []Node  `json:"nodes"`
	Tables []Table `json:"tables"`
	Log    *string `json:"log,omitempty"`
}

// Node is how one node of a run ended and how long it ran.
type Node struct {
	Node   string `json:"node"`
	Result string `json:"result"`
	WallMS int64  `json:"wall_ms"`
}

// Table is a table a run wrote, with its row count in the run's data.
type Table struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// ErrNoRun is a run the repo neither runs nor keeps.
var ErrNoRun = errors.New("no such run")

// Filter is what "weir runs", GET /api/repos/<repo>/runs and the web
// view's list select: a branch, a state name, at most Limit (0: all).
type Filter struct {
	Branch string
	State  string
	Limit  int
}

// Check refuses a negative limit and an unknown state, in words that
// name the flag ("--limit", "--state").
func (f Filter) Check() error {
	if f.Limit < 0 {
		return fmt.Errorf("--limit %d: want 0 (all) or more", f.Limit)
	}
	if f.State != "" && !slices.Contains(StateNames(), f.State) {
		return fmt.Errorf("--state %q: want one of %s", f.State, strings.Join(StateNames(), ", "))
	}
	return nil
}

// StateNames are the states a run can be in, in the scheduler's order.
func StateNames() []string {
	var ns []string
	for st := sched.Queued; st.Final() || st <= sched.Running; st++ {
		ns = append(ns, st.String())
	}
	return ns
}

// Apply returns the runs f selects, newest first as given (runs is not
// changed).
func (f Filter) Apply(runs []sched.RunInfo) []sched.RunInfo {
	runs = slices.DeleteFunc(slices.Clone(runs), func(r sched.RunInfo) bool {
		if f.State != "" && r.State.String() != f.State {
			return true
		}
		return f.Branch != "" && !slices.ContainsFunc(r.Targets, func(t sched.Target) bool { return t.Branch == f.Branch })
	})
	if f.Limit > 0 && len(runs) > f.Limit {
		runs = runs[:f.Limit]
	}
	return runs
}

// queued is what the scheduler holds of repo (nil without one).
func (s *Source) queued(repo objects.RepoName) []sched.RunInfo {
	if s.sched == nil {
		return nil
	}
	return s.sched.Runs(sched.Repo(repo))
}

// Queued lists the runs of repo the scheduler holds, as f selects,
// newest first: no nodes, tables or log.
func (s *Source) Queued(repo objects.RepoName, f Filter) []View {
	list := []View{}
	for _, ri := range f.Apply(s.queued(repo)) {
		list = append(list, summary(repo, ri))
	}
	return list
}

// summary is a View of what the scheduler knows of one run.
func summary(repo objects.RepoName, ri sched.RunInfo) View {
	v := View{ID: string(ri.ID), Repo: string(repo), State: ri.State.String(), Pusher: string(ri.Pusher), Note: ri.Note,
		Nodes: []Node{}, Tables: []Table{}}
	if len(ri.Targets) > 0 {
		v.Branch, v.Code = ri.Targets[0].Branch, ri.Targets[0].Code.String()
	}
	arrived, wait, dur := ri.Arrived.UTC(), ri.Wait.Milliseconds(), ri.Duration.Milliseconds()
	v.Arrived, v.QueueWaitMS, v.DurationMS = &arrived, &wait, &dur
	return v
}

// List lists the runs of repo f selects, newest first: those the
// scheduler holds and those refs/runs/ keeps (one is listed once, with
// what both know), with their nodes' times but no tables or log. It reads
// one commit per kept run.
func (s *Source) List(ctx context.Context, repo objects.RepoName, f Filter) ([]View, error) {
	all := f
	all.Limit = 0
	out := []View{}
	at := map[string]int{}
	for _, ri := range all.Apply(s.queued(repo)) {
		at[string(ri.ID)] = len(out)
		out = append(out, summary(repo, ri))
	}
	kept, err := hooks.KeptRuns(ctx, s.cat.Refs(), s.objs, repo)
	if err != nil {
		return nil, err
	}
	var fromRefs []View
	for _, rec := range kept {
		if i, ok := at[string(rec.ID)]; ok {
			v := &out[i]
			v.Status, v.Kept = rec.Status, "refs/runs/"+string(rec.ID)+"/"
			ended := rec.Ended
			v.Ended, v.Nodes = &ended, nodes(rec)
			if v.Pusher == "" {
				v.Pusher = rec.Pusher
			}
			continue
		}
		v := View{ID: string(rec.ID), Repo: string(repo), Nodes: []Node{}, Tables: []Table{}}
		fill(&v, rec)
		if f.Branch != "" && v.Branch != f.Branch || f.State != "" && v.State != f.State {
			continue
		}
		fromRefs = append(fromRefs, v)
	}
	// The scheduler's are the newest (it holds what runs now and what
	// ended last); kept runs it forgot ended before them.
	out = append(out, fromRefs...)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// fill sets what a kept run's record says.
func fill(v *View, rec hooks.RunRecord) {
	v.Kept = "refs/runs/" + string(rec.ID) + "/"
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
	}
	ended := rec.Ended
	v.Ended = &ended
	v.Nodes = nodes(rec)
}

func nodes(rec hooks.RunRecord) []Node {
	out := []Node{}
	for _, n := range rec.Nodes {
		out = append(out, Node{Node: n.Node, Result: n.Result, WallMS: n.Wall.Milliseconds()})
	}
	return out
}

// Run finds run id ("latest": the newest, of branch when given) of repo
// in the scheduler and the refs; withLog adds its log.
func (s *Source) Run(ctx context.Context, repo objects.RepoName, id, branch string, withLog bool) (View, error) {
	var info *sched.RunInfo
	infos := s.queued(repo)
	if id == "latest" {
		f := Filter{Branch: branch, Limit: 1}
		if got := f.Apply(infos); len(got) > 0 {
			info = &got[0]
			id = string(info.ID)
		} else {
			kept, err := hooks.KeptRuns(ctx, s.cat.Refs(), s.objs, repo)
			if err != nil {
				return View{}, err
			}
			kept = slices.DeleteFunc(kept, func(r hooks.RunRecord) bool { return branch != "" && r.Branch != branch })
			if len(kept) == 0 {
				return View{}, fmt.Errorf("%w: %s has no runs%s yet", ErrNoRun, repo, onBranch(branch))
			}
			id = string(kept[0].ID)
		}
	} else if !hooks.ValidRunID(id) {
		return View{}, fmt.Errorf("%w: %q is not a run id (r-<hex>, as weir runs lists, or latest)", ErrNoRun, id)
	} else if i := slices.IndexFunc(infos, func(r sched.RunInfo) bool { return string(r.ID) == id }); i >= 0 {
		info = &infos[i]
	}
	v := View{ID: id, Repo: string(repo), Nodes: []Node{}, Tables: []Table{}}
	rec, text, err := hooks.ReadRun(ctx, s.cat.Refs(), s.objs, repo, hooks.RunID(id), withLog)
	switch {
	case err == nil:
		fill(&v, rec)
		if !rec.Data.IsZero() {
			v.Tables = s.tables(ctx, repo, rec.Data, id)
		}
		if withLog {
			v.Log = &text
		}
	case errors.Is(err, hooks.ErrNoRun) && info != nil:
	case errors.Is(err, hooks.ErrNoRun):
		return View{}, fmt.Errorf("%w: %s has no run %s (weir runs %s lists them)", ErrNoRun, repo, id, repo)
	default:
		return View{}, err
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
func (s *Source) tables(ctx context.Context, repo objects.RepoName, h objects.Hash, id string) []Table {
	tabs, err := s.cat.Tables(ctx, repo, h)
	out := []Table{}
	if err != nil {
		return out
	}
	for t, p := range tabs {
		if p.Run == id {
			out = append(out, Table{Table: t.String(), Rows: p.Rows})
		}
	}
	slices.SortFunc(out, func(a, b Table) int { return strings.Compare(a.Table, b.Table) })
	return out
}
