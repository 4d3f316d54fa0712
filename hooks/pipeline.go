package hooks

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Catalog is what the pipeline hook needs of package catalog: the tables
// of a data commit, their files, and new data commits. *catalog.Catalog
// implements it.
type Catalog interface {
	TableReader
	WriteDataCommit(ctx context.Context, repo objects.RepoName, base objects.Hash, writes []catalog.TableWrite, info catalog.CommitInfo) (objects.Hash, error)
	// Publish marks the pointers of next that base lacks as published,
	// before a successful run's data ref update (invariant 6).
	Publish(ctx context.Context, repo objects.RepoName, base, next objects.Hash) error
}

// TableReader reads the tables of a data commit: the server's, or (from a
// DataVerifier's Pushed) one a client pushed.
type TableReader interface {
	Tables(ctx context.Context, repo objects.RepoName, dataCommit objects.Hash) (map[catalog.TableName]catalog.Pointer, error)
	ReadTableFiles(ctx context.Context, repo objects.RepoName, dataCommit objects.Hash, t catalog.TableName) ([]string, error)
}

// DataVerifier checks a data commit a client pushed to refs/data/*
// (invariant 6: every table pointer in it was published) and reads its
// tables from the push's quarantine, for the branch's expectations. A
// Catalog that also implements it lets clients push merges and reverts of
// data; without it such pushes are refused.
type DataVerifier interface {
	VerifyPushedDataCommit(ctx context.Context, q *objects.Quarantine, commit objects.Hash) error
	Pushed(q *objects.Quarantine) *catalog.PushedView
}

// RunID names one run: "r-" and 16 hex digits, the first 8 the Unix
// second the id was made (big-endian), the next 4 the fraction of that
// second (in 2^-16 steps), the last 4 random:
//
//	r-6575a3c1 9f03 b2aa
//	   seconds frac random
//
// so that listing kept runs (refs/runs/<id>/) newest first needs their
// names only, not their commits (RunID.Time). Servers before this made
// "r-" and 8 random hex digits; ValidRunID accepts both.
type RunID string

func newRunID() RunID {
	// The second, then the fraction of it in 2^-16 steps, then random:
	// the names of runs made in one second sort as the runs were made.
	var b [8]byte
	now := time.Now()
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	binary.BigEndian.PutUint16(b[4:6], uint16(uint64(now.Nanosecond())<<16/1e9))
	_, _ = rand.Read(b[6:])
	return RunID("r-" + hex.EncodeToString(b[:]))
}

// Time returns when id was made, to the second; ok is false for an id of
// the older form (8 random hex digits) or one that is not weir's.
func (id RunID) Time() (t time.Time, ok bool) {
	h, found := strings.CutPrefix(string(id), "r-")
	if !found || len(h) != 16 || !ValidRunID(string(id)) {
		return time.Time{}, false
	}
	b, err := hex.DecodeString(h[:8])
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC(), true
}

// RunRef returns refs/runs/<id>/<part> (part is code, data or log).
func RunRef(id RunID, part string) refs.Name {
	return refs.Name(refs.RunsPrefix + string(id) + "/" + part)
}

// DataRef returns refs/data/<branch>.
func DataRef(branch string) refs.Name { return refs.Name(refs.DataPrefix + branch) }

// Push options the pipeline hook understands (git push -o ...).
const (
	OptionDryRun      = "dry-run" // plan and print the plan; change nothing
	OptionParamPrefix = "param."  // param.NAME=VALUE: an opaque value for the models
)

// PipelineConfig configures Pipeline.
type PipelineConfig struct {
	Refs    refs.Store
	Catalog Catalog
	Runner  exec.Runner
	// SQL parses models and expectations at plan time; nil runs the
	// runner's parser in a sandbox of Runner (SandboxSQL), with MaxLimits.
	SQL pipeline.SQLParser
	// WorkDir holds each run's staging folders (inputs linked from the
	// warehouse, node outputs) until the run ends. Put it on the
	// warehouse's filesystem so inputs are hard links, not copies.
	WorkDir string
	// Runtimes are the runtimes nodes may ask for besides exec.HostRuntime.
	Runtimes []string
	// Parallel bounds the nodes running at once (default runtime.NumCPU()).
	Parallel int
	// MaxLimits cap what weir.toml may ask for; zero fields take
	// exec.DefaultLimits(). A node may lower its limits, never raise them
	// past these.
	MaxLimits exec.Limits
	// KeepAlive is how often a long node reports it is still running
	// (default 10 s).
	KeepAlive time.Duration
	// Logger receives one line per run and per node (default slog.Default()).
	Logger *slog.Logger
	// HidePaths are server folders (the data directory, the sandboxes'
	// state) cut out of every line the client sees, with WorkDir and the
	// warehouse (when the Catalog can Redact).
	HidePaths []string
	// Rules returns the rules of a branch (require-run); nil: no rules.
	// Who may push which ref, and protection, are decided before the hook
	// (gitserver asks access for each ref).
	Rules func(repo objects.RepoName, branch string) access.BranchRules
	// Scheduler is the server's one run queue (admit.go): every push that
	// runs nodes is admitted by it, and each node takes a node slot of it
	// while it runs. nil: every push runs at once, bounded by nothing.
	Scheduler *sched.Scheduler
	// MaxPriority returns the highest priority (push option priority=N)
	// an identity may ask for; nil: 0 for everyone.
	MaxPriority func(access.Identity) int
	// MergeTrain is the most merge requests into one branch merged
	// together and run once (a merge train, train.go); below 2, or with
	// no Scheduler, every merge request merges and runs alone.
	MergeTrain int
}

// Pipeline is the pre-receive hook that plans and runs the pushed
// pipeline and moves the branch's data ref with its code ref.
//
// For each pushed branch refs/heads/<b> whose new commit has a pipeline:
//
//	plan      parse, infer SQL inputs, refuse cycles/unknown tables/...
//	start     data = refs/data/<b> (a new branch: the data of the branch it
//	          was made from: the one whose code commit is an ancestor, else
//	          HEAD's, else main's)
//	run       nodes in topological order, independent ones in parallel,
//	          each in a sandbox seeing only its inputs and its /out; the
//	          next nodes' sandboxes are built (their runners started and
//	          held until their inputs exist) while earlier nodes run, and
//	          each output is snapshotted in Iceberg as soon as its node
//	          has finished (catalog.StageTable)
//	write     one data commit on top of the start data (catalog), with the
//	          run and code commit as trailers
//	decide    ok:   Updates += refs/data/<b> start -> new, refs/runs/<id>/log
//	          fail: Refused[refs/heads/<b>] = "weir: <node> failed: ...";
//	                Updates += refs/runs/<id>/{code,data,log}
//
// gitserver commits the Updates with the accepted commands in one write, so
// the code and data refs move together or not at all. A branch whose code
// moved since the run started loses the compare-and-swap; one whose data
// alone moved takes the run's outputs on top when the tables that changed
// are disjoint from what the run read and wrote, and refuses the push
// naming the table otherwise (datacommit.go, onto).
//
// It is safe for concurrent use: pushes to different branches run at the
// same time. With a Scheduler, each push that runs nodes first waits for
// its turn (admit.go) and a push to a branch whose run is going waits for
// that run's refs to be written, then is rechecked; without one, pushes to
// one branch race to the compare-and-swap.
type Pipeline struct {
	cfg      PipelineConfig
	runtimes map[string]bool
	log      *slog.Logger
	trains   trains // merge trains being formed (train.go)
}

var _ PreReceive = (*Pipeline)(nil)

// NewPipeline returns the pipeline hook.
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	if cfg.Refs == nil || cfg.Catalog == nil || cfg.Runner == nil {
		return nil, errors.New("hooks: pipeline needs Refs, Catalog and Runner")
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(os.TempDir(), "weir-runs")
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("hooks: work dir: %w", err)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = runtime.NumCPU()
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := exec.DefaultLimits()
	m := &cfg.MaxLimits
	if m.Wall <= 0 {
		m.Wall = d.Wall
	}
	if m.Memory <= 0 {
		m.Memory = d.Memory
	}
	if m.CPU <= 0 {
		m.CPU = d.CPU
	}
	if cfg.SQL == nil {
		cfg.SQL = &SandboxSQL{Runner: cfg.Runner, WorkDir: cfg.WorkDir, Limits: cfg.MaxLimits}
	}
	rt := map[string]bool{exec.HostRuntime: true}
	for _, r := range cfg.Runtimes {
		rt[r] = true
	}
	return &Pipeline{cfg: cfg, runtimes: rt, log: cfg.Logger}, nil
}

// options are the parsed push options.
type options struct {
	dryRun bool
	timing bool
	rerun  bool // run every node, unchanged seeds too
	params map[string]string
	// priority is the run's priority in the queue (priority=N); the
	// pusher's cap is checked by checkPriority.
	priority int
}

// knownOptions lists the push options, for the refusal of others.
var knownOptions = OptionDryRun + ", " + OptionTiming + ", " + OptionRerun + ", " + OptionPriority + "N, " + OptionParamPrefix + "NAME=VALUE"

// parseOptions reads the push options. An option it does not know refuses
// the push: a typo such as "dryrun" must not turn a dry run into a live
// one.
func parseOptions(opts []string) (options, error) {
	o := options{params: map[string]string{}}
	for _, s := range opts {
		switch {
		case s == OptionDryRun:
			o.dryRun = true
		case s == OptionTiming:
			o.timing = true
		case s == OptionRerun:
			o.rerun = true
		case strings.HasPrefix(s, OptionPriority):
			n, err := parsePriority(s)
			if err != nil {
				return o, err
			}
			o.priority = n
		case strings.HasPrefix(s, OptionParamPrefix):
			name, val, ok := strings.Cut(s[len(OptionParamPrefix):], "=")
			if !ok || !validParam(name) {
				return o, fmt.Errorf("weir: bad push option %q: want param.NAME=VALUE with NAME of letters, digits and _", clipLine(s, 60))
			}
			o.params[name] = val
		default:
			return o, fmt.Errorf("weir: unknown push option %q; known: %s", clipLine(s, 60), knownOptions)
		}
	}
	return o, nil
}

func validParam(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// PreReceive decides p.
func (h *Pipeline) PreReceive(ctx context.Context, p *Push) (*Result, error) {
	defer h.startSQLAhead() // the next push's SQL parser, once this one's nodes are done
	res := &Result{Refused: map[refs.Name]string{}}
	opts, err := parseOptions(p.Options)
	if err == nil {
		err = h.checkPriority(p, opts)
	}
	if err != nil {
		for _, c := range p.Commands {
			res.Refused[c.Name] = err.Error()
		}
		return res, nil
	}
	out := &progress{w: p.Progress, redact: h.redact}
	// A lone merge request rides the train forming for its branch, or
	// leads a new one (train.go).
	var tr *train
	var tkey trainKey
	if c, b, ok := h.trainRequest(p, opts); ok {
		r := &rider{p: p, c: c, out: out}
		tkey = trainKey{repo: p.Repo, branch: b}
		t, lead := h.trains.join(tkey, r, h.cfg.MergeTrain)
		if !lead {
			if res := h.ride(t, r); res != nil {
				return res, nil
			}
			// Out of the train: it merges alone, the usual way.
		} else {
			tr = t
		}
	}
	// One place in the run queue for the whole push, before anything of
	// it runs (admit.go).
	adm, refusal := h.admitPush(ctx, p, opts, out)
	if refusal != "" {
		if tr != nil {
			h.endTrain(tkey, tr, nil)
		}
		for _, c := range p.Commands {
			res.Refused[c.Name] = h.redact(refusal)
		}
		return res, nil
	}
	var ran []*run // runs that made data: they publish only if their command lands
	res.Finish = func(ctx context.Context, refused map[refs.Name]string) ([]refs.Update, map[refs.Name]string) {
		var ups []refs.Update
		var refuse map[refs.Name]string
		for _, r := range ran {
			u, why := r.finish(ctx, refused[r.key])
			if why != "" {
				if refuse == nil {
					refuse = map[refs.Name]string{}
				}
				refuse[r.key] = h.redact(why)
			}
			ups = append(ups, u...)
		}
		return ups, refuse
	}
	res.Report = func(refused map[refs.Name]string) {
		for _, r := range ran {
			r.report(refused[r.key])
		}
		// The refs are written: the next run of these branches may start.
		adm.done(ctx, refused)
		if tr != nil {
			h.endTrain(tkey, tr, refused)
		}
	}
	pushedData := map[refs.Name]bool{}
	pushedBranch := map[string]bool{} // branches whose code or data ref is pushed
	for _, c := range p.Commands {
		if strings.HasPrefix(string(c.Name), refs.DataPrefix) {
			pushedData[c.Name] = true
		}
		for _, pre := range []string{refs.HeadsPrefix, refs.DataPrefix} {
			if b, ok := strings.CutPrefix(string(c.Name), pre); ok {
				pushedBranch[b] = true
			}
		}
	}
	for _, c := range p.Commands {
		name := string(c.Name)
		switch {
		case strings.HasPrefix(name, refs.RunsPrefix):
			res.Refused[c.Name] = "weir: refs/runs/ is written by the server only"
		case strings.HasPrefix(name, refs.DataPrefix):
			h.checkDataPush(ctx, p, c, opts, out, res, adm)
		case strings.HasPrefix(name, refs.HeadsPrefix):
			branch := strings.TrimPrefix(name, refs.HeadsPrefix)
			if pushedData[DataRef(branch)] {
				res.Refused[c.Name] = "weir: push refs/heads/" + branch + " and refs/data/" + branch + " separately"
				continue
			}
			if r := h.branch(ctx, p, c, branch, opts, out, res, adm, c.Name); r != nil {
				ran = append(ran, r)
			}
		case strings.HasPrefix(name, refs.MergePrefix):
			branch := strings.TrimPrefix(name, refs.MergePrefix)
			if pushedBranch[branch] {
				res.Refused[c.Name] = "weir: push refs/merge/" + branch + " on its own, not with refs/heads/" + branch + " or refs/data/" + branch
				continue
			}
			if tr != nil {
				r, handled := h.lead(ctx, p, c, branch, opts, out, res, adm, tkey, tr)
				if r != nil {
					ran = append(ran, r)
				}
				if handled {
					continue
				}
			}
			if r := h.merge(ctx, p, c, branch, opts, out, res, adm); r != nil {
				ran = append(ran, r)
			}
		}
	}
	for name, why := range res.Refused {
		res.Refused[name] = h.redact(why)
	}
	return res, nil
}

// redact cuts the server's own paths out of text for the client: the
// run's staging folders, the warehouse, HidePaths.
func (h *Pipeline) redact(s string) string {
	if r, ok := h.cfg.Catalog.(interface{ Redact(string) string }); ok {
		s = r.Redact(s)
	}
	for _, p := range append([]string{h.cfg.WorkDir}, h.cfg.HidePaths...) {
		if p = strings.TrimSuffix(p, "/"); len(p) > 1 {
			s = strings.ReplaceAll(s, p+"/", "")
			s = strings.ReplaceAll(s, p, "")
		}
	}
	return s
}

// branch handles one pushed code branch. It returns the run when one made
// data for the branch (its updates come from Result.Finish). req is the
// command the client sent: c itself, or the merge request c lands for
// (merge.go).
func (h *Pipeline) branch(ctx context.Context, p *Push, c Command, branch string, opts options, out *progress, res *Result, adm *admission, req refs.Name) *run {
	began := time.Now()
	dref := DataRef(branch)
	cur, err := h.cfg.Refs.Resolve(ctx, p.Repo, dref)
	if err != nil && !errors.Is(err, refs.ErrNotFound) {
		res.Refused[c.Name] = "weir: read " + string(dref) + ": " + err.Error()
		return nil
	}
	if c.New.IsZero() { // branch deleted: its data goes with it
		if !cur.IsZero() {
			res.Updates = append(res.Updates, refs.Update{Name: dref, Old: cur, New: objects.ZeroHash})
		}
		return nil
	}
	start, same := cur, false
	if cur.IsZero() {
		start, same = h.baseData(ctx, p, c.New, branch)
	}
	if same && !start.IsZero() {
		// A new branch at its base's code commit: its data is the base's
		// data (one ref copy, nothing runs or is copied).
		res.Updates = append(res.Updates, refs.Update{Name: dref, Old: objects.ZeroHash, New: start})
		out.linef("weir: %s created at %s with the data of its base (%s)", branch, short(c.New), short(start))
		return nil
	}
	pl, err := adm.load(p, c.New)
	if errors.Is(err, pipeline.ErrNoPipeline) {
		// A plain Git commit; a new branch still gets its base's data.
		if cur.IsZero() && !start.IsZero() {
			res.Updates = append(res.Updates, refs.Update{Name: dref, Old: objects.ZeroHash, New: start})
		}
		return nil
	}
	r := &run{
		h: h, push: p, cmd: c, branch: branch, opts: opts, out: out,
		id: adm.runID(req), key: req, start: start, dataOld: cur, began: began,
		code: c.New, tables: h.cfg.Catalog, ticket: adm.tick(),
	}
	r.log = h.log.With("repo", p.Repo, "ref", c.Name, "run", r.id)
	r.exec(ctx, pl, err, res)
	if r.newData.IsZero() {
		return nil
	}
	return r
}

// baseData finds the data a new branch starts from: the data of a branch
// whose code commit is an ancestor of (or equal to: same) the pushed
// commit, preferring HEAD's branch and main; else main's or HEAD's data.
func (h *Pipeline) baseData(ctx context.Context, p *Push, commit objects.Hash, branch string) (data objects.Hash, same bool) {
	datas, err := h.cfg.Refs.List(ctx, p.Repo, refs.DataPrefix)
	if err != nil || len(datas) == 0 {
		return objects.ZeroHash, false
	}
	var prefer []string
	if head, err := h.cfg.Refs.Get(ctx, p.Repo, refs.HEAD); err == nil && strings.HasPrefix(string(head.Target), refs.HeadsPrefix) {
		prefer = append(prefer, strings.TrimPrefix(string(head.Target), refs.HeadsPrefix))
	}
	prefer = append(prefer, "main", "master")
	byBranch := map[string]objects.Hash{}
	for _, d := range datas {
		byBranch[strings.TrimPrefix(string(d.Name), refs.DataPrefix)] = d.Hash
	}
	var order []string
	seen := map[string]bool{branch: true}
	for _, b := range prefer {
		if _, ok := byBranch[b]; ok && !seen[b] {
			order = append(order, b)
			seen[b] = true
		}
	}
	var rest []string
	for b := range byBranch {
		if !seen[b] {
			rest = append(rest, b)
		}
	}
	sort.Strings(rest)
	order = append(order, rest...)
	pushed, err := object.GetCommit(p.Quarantine.Storer(), commit)
	if err == nil {
		for _, b := range order {
			code, err := h.cfg.Refs.Resolve(ctx, p.Repo, refs.Name(refs.HeadsPrefix+b))
			if err != nil {
				continue
			}
			if code == commit {
				return byBranch[b], true
			}
			bc, err := object.GetCommit(p.Quarantine.Storer(), code)
			if err != nil {
				continue
			}
			if ok, err := bc.IsAncestor(pushed); err == nil && ok {
				return byBranch[b], false
			}
		}
	}
	for _, b := range append([]string{"main"}, prefer...) {
		if d, ok := byBranch[b]; ok && b != branch {
			return d, false
		}
	}
	return objects.ZeroHash, false
}

// progress serialises whole lines to the client.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	buf    strings.Builder     // everything written, for the run log
	redact func(string) string // cuts server paths; nil keeps lines as they are
}

func (p *progress) linef(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if p.redact != nil {
		line = p.redact(line)
	}
	line = Neutralise(strings.ReplaceAll(line, "\n", " "))
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.WriteString(line + "\n")
	if p.w != nil {
		_, _ = io.WriteString(p.w, line+"\n")
	}
}

// mark returns where the next line will start, for textFrom.
func (p *progress) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Len()
}

// textFrom returns the lines written since mark returned from.
func (p *progress) textFrom(from int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()[from:]
}

// clipLine makes s one line of at most about n bytes that is safe to show
// (Neutralise), its white space runs made one space.
func clipLine(s string, n int) string {
	s = strings.Join(strings.Fields(Neutralise(strings.ReplaceAll(s, "\r\n", "\n"))), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:n] + "..."
	}
	return s
}

func short(h objects.Hash) string { return h.String()[:7] }

// commaInt formats n with thousands separators: 1204 -> "1,204".
func commaInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
