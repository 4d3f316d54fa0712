package sched

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// State is how a request stands, for the listing.
type State uint8

// States. A request is Queued from Admit until it runs or leaves; the
// others but Running are final.
const (
	Queued    State = iota // waiting for a branch or a run slot
	Running                // admitted; Ticket.Done not called yet
	Succeeded              // Done(Succeeded)
	Failed                 // Done(Failed)
	Cancelled              // its client went away, queued or running
	Refused                // refused before it ran: its recheck failed
)

var stateNames = [...]string{"queued", "running", "succeeded", "failed", "cancelled", "refused"}

func (st State) String() string {
	if int(st) < len(stateNames) {
		return stateNames[st]
	}
	return fmt.Sprintf("State(%d)", st)
}

// Final reports whether st is an end state.
func (st State) Final() bool { return st >= Succeeded && int(st) < len(stateNames) }

// RunInfo is one request as the listing shows it.
type RunInfo struct {
	ID       RunID
	Repo     Repo
	Targets  []Target
	Pusher   Identity
	Priority int
	State    State
	// Note says how it ended (Ticket.Done's note, a recheck's refusal).
	Note string
	// Ahead is, while Queued, how many requests are ahead of it
	// (Position.Ahead); BranchWait that it waits for its own branch.
	Ahead      int
	BranchWait bool
	// Arrived is when Admit was called.
	Arrived time.Time
	// Wait is how long it waited: until it started, or until now (or its
	// end) if it never did.
	Wait time.Duration
	// Duration is how long it has run (until Done, or now); zero if it
	// never started.
	Duration time.Duration
	// Nodes is how many node slots it was granted.
	Nodes int
	// Forgotten marks a run this scheduler does not hold (read back from
	// where the server keeps ended runs, after a restart or past
	// Config.History): Wait and Duration are unknown, and WriteRuns shows
	// them as "-".
	Forgotten bool
}

// history keeps the last max ended entries.
type history struct {
	buf  []*entry
	next int // where the next one goes once buf is full
	max  int
}

func (h *history) add(e *entry) {
	if len(h.buf) < h.max {
		h.buf = append(h.buf, e)
		return
	}
	h.buf[h.next] = e
	h.next = (h.next + 1) % h.max
}

// Runs lists the requests of repo ("" for every repo) the scheduler
// holds now (queued, running) and the last Config.History that ended,
// newest first.
func (s *Scheduler) Runs(repo Repo) []RunInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reposition()
	now := time.Now()
	var es []*entry
	for e := range s.active {
		es = append(es, e)
	}
	es = append(es, s.hist.buf...)
	es = slices.DeleteFunc(es, func(e *entry) bool { return repo != "" && e.req.Repo != repo })
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(b.item.Seq, a.item.Seq) })
	out := make([]RunInfo, len(es))
	for i, e := range es {
		out[i] = e.info(now)
	}
	return out
}

// info is e as the listing shows it at now; under mu.
func (e *entry) info(now time.Time) RunInfo {
	ri := RunInfo{
		ID: e.req.ID, Repo: e.req.Repo, Targets: e.targets(), Pusher: e.req.Pusher,
		Priority: e.req.Priority, State: e.state, Note: e.note, Arrived: e.arrived, Nodes: e.nodes,
	}
	end := now
	if !e.ended.IsZero() {
		end = e.ended
	}
	switch {
	case !e.started.IsZero():
		ri.Wait = e.started.Sub(e.arrived)
		ri.Duration = end.Sub(e.started)
	default:
		ri.Wait = end.Sub(e.arrived)
	}
	if e.state == Queued {
		ri.Ahead, ri.BranchWait = e.pos.Ahead, e.pos.Branch
	}
	return ri
}

// WriteRuns writes runs as the table "weir runs <repo>" prints: one line
// per run, newest first as given, columns run, state, branch@code,
// pusher, queue wait, duration, and a note (runs ahead while queued; how
// it ended). Client-given text (branch names, pushers, notes) has its
// control characters written as '?'.
func WriteRuns(w io.Writer, runs []RunInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATE\tBRANCH\tPUSHER\tWAIT\tTIME\tNOTE")
	for _, r := range runs {
		var ts []string
		for _, t := range r.Targets {
			code := t.Code.String()
			ts = append(ts, clean(t.Branch)+"@"+code[:min(7, len(code))])
		}
		branch := strings.Join(ts, ",")
		if branch == "" {
			branch = "-"
		}
		wait, dur := roundDur(r.Wait), "-"
		if r.State != Queued && !r.Forgotten {
			dur = roundDur(r.Duration)
		}
		if r.Forgotten {
			wait = "-"
		}
		note := r.Note
		if r.State == Queued {
			note = Position{Ahead: r.Ahead, Branch: r.BranchWait}.String()
		}
		id := string(r.ID)
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(id), r.State, branch, clean(string(r.Pusher)), wait, dur, clean(note))
	}
	return tw.Flush()
}

// roundDur formats d for the listing: "0.4s", "12s", "3m05s".
func roundDur(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// clean makes s one line of printable characters, tabs included (they
// would break the table).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
