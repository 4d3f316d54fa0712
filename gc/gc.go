package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Forever is a retention that never expires.
const Forever time.Duration = -1

// Defaults of Options (and of the flags of weir gc and weir serve).
const (
	DefaultGrace          = time.Hour
	DefaultKeepFailedRuns = 14 * 24 * time.Hour
	DefaultKeepRuns       = Forever
	DefaultReflogExpiry   = 90 * 24 * time.Hour
)

// Options configure one collection. Retentions are ages: 0 expires
// everything at once, Forever nothing.
type Options struct {
	// Grace keeps warehouse files younger than it, and objects Put within
	// it, with what they name: in-flight runs and REST commits.
	Grace time.Duration
	// KeepFailedRuns is how long a run that did not land is kept under
	// refs/runs/<id>/ (its code, partial data and log).
	KeepFailedRuns time.Duration
	// KeepRuns is how long a successful run's log is kept (its data is on
	// its branch anyway).
	KeepRuns time.Duration
	// ReflogExpiry is the age past which reflog entries are deleted; a
	// ref's newest entry stays while the ref exists.
	ReflogExpiry time.Duration
	// DryRun changes nothing and reports what would be freed.
	DryRun bool
	// Repos limits the collection to these repos (nil: every repo).
	Repos []objects.RepoName
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{Grace: DefaultGrace, KeepFailedRuns: DefaultKeepFailedRuns, KeepRuns: DefaultKeepRuns, ReflogExpiry: DefaultReflogExpiry}
}

// Result is what one collection freed (or, DryRun, would free). It is
// what weir gc prints and what a metrics exporter may read.
type Result struct {
	DryRun        bool
	Started       time.Time
	Duration      time.Duration
	Repos         int
	RunsExpired   int // runs whose refs/runs/<id>/ was deleted
	RefsExpired   int // refs deleted with them
	ReflogEntries int // reflog entries expired (a run's own log included)
	Objects       int // objects deleted
	ObjectBytes   int64
	DeltaRecords  int
	KeptObjects   int // objects that remain
	Files         int // warehouse files deleted
	FileBytes     int64
	KeptFiles     int // warehouse files that remain
	// LongestSweep is the longest time one repo's sweep held the write
	// barrier: how long pushes and commits waited for the collection.
	LongestSweep time.Duration
	// Errors says which repos were left alone, in part or whole, and why.
	Errors []string
}

// String is the summary weir gc prints.
func (r Result) String() string {
	verb := "freed"
	if r.DryRun {
		verb = "would free"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gc: %s %d objects (%s), %d warehouse files (%s); expired %d runs (%d refs), %d reflog entries; %d repos in %s\n",
		verb, r.Objects, bytesText(r.ObjectBytes), r.Files, bytesText(r.FileBytes), r.RunsExpired, r.RefsExpired, r.ReflogEntries, r.Repos, r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "gc: kept %d objects, %d warehouse files; %d delta records dropped; writers waited at most %s\n", r.KeptObjects, r.KeptFiles, r.DeltaRecords, r.LongestSweep.Round(time.Microsecond))
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "gc: not collected: %s\n", e)
	}
	return b.String()
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// Collector collects one server's objects, refs and warehouse.
type Collector struct {
	Objects *objects.Store
	Refs    *refs.DB
	Catalog *catalog.Catalog
	Logger  *slog.Logger // nil: no log
	// Now is the clock (nil: time.Now); tests move it.
	Now func() time.Time
	// Report, if set, is called for each thing deleted (or, DryRun, that
	// would be): kind is "run", "object" or "file".
	Report func(repo objects.RepoName, kind, what string, bytes int64)
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Collector) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Collector) report(repo objects.RepoName, kind, what string, n int64) {
	if c.Report != nil {
		c.Report(repo, kind, what, n)
	}
}

// Run runs one collection. An error in one repo leaves that repo (or its
// warehouse part) alone and is listed in Result.Errors; Run's own error
// is for what stops the whole collection (another one running, ctx).
func (c *Collector) Run(ctx context.Context, opts Options) (Result, error) {
	res := Result{DryRun: opts.DryRun, Started: c.now()}
	if opts.Grace < 0 {
		return res, fmt.Errorf("gc: the grace period must be a duration of 0 or more, not %v", opts.Grace)
	}
	res, err := c.run(ctx, opts, res)
	res.Duration = c.now().Sub(res.Started)
	c.log().Info("gc done", "dry_run", opts.DryRun, "objects", res.Objects, "object_bytes", res.ObjectBytes,
		"files", res.Files, "file_bytes", res.FileBytes, "runs", res.RunsExpired, "reflog_entries", res.ReflogEntries,
		"errors", len(res.Errors), "ms", res.Duration.Milliseconds(), "longest_sweep_ms", res.LongestSweep.Milliseconds())
	return res, err
}

func (c *Collector) run(ctx context.Context, opts Options, res Result) (Result, error) {
	repos := opts.Repos
	if repos == nil {
		var err error
		if repos, err = c.Refs.Repos(ctx); err != nil {
			return res, err
		}
	}
	col, err := c.Objects.BeginCollection()
	if err != nil {
		return res, err
	}
	defer col.End()
	for _, repo := range repos {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Repos++
		if err := c.repo(ctx, col, repo, opts, &res); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", repo, err))
			c.log().Warn("gc: repo not collected", "repo", repo, "err", err)
		}
	}
	return res, nil
}

// expired reports whether something of age age is past keep.
func expired(age, keep time.Duration) bool {
	return keep != Forever && age > keep
}

// repo collects one repo.
func (c *Collector) repo(ctx context.Context, col *objects.Collection, repo objects.RepoName, opts Options, res *Result) error {
	now := c.now()
	if !opts.DryRun {
		// The published index is backfilled from reflogs: build it
		// before any reflog entry goes.
		if err := c.Catalog.IndexPublished(ctx, repo); err != nil {
			return fmt.Errorf("index published pointers: %w", err)
		}
	}
	// 1. Runs past their retention.
	gone := map[refs.Name]bool{} // refs deleted (or, dry run, that would be)
	runs, err := hooks.KeptRuns(ctx, c.Refs, c.Objects, repo)
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	for _, r := range runs {
		ok := r.Status == "ok" || strings.HasPrefix(r.Status, "ok,")
		keep := opts.KeepFailedRuns
		if ok {
			keep = opts.KeepRuns
		}
		if r.Ended.IsZero() || !expired(now.Sub(r.Ended), keep) {
			continue
		}
		names, err := c.expireRun(ctx, repo, r.ID, opts.DryRun)
		if err != nil {
			return fmt.Errorf("expire run %s: %w", r.ID, err)
		}
		if len(names) == 0 {
			continue
		}
		res.RunsExpired++
		res.RefsExpired += len(names)
		for _, n := range names {
			gone[n] = true
		}
		c.report(repo, "run", fmt.Sprintf("%s (%s, %s)", r.ID, r.Status, r.Ended.Format(time.RFC3339)), 0)
	}
	// 2. Reflog entries past the expiry; an expired run's whole log.
	names, err := c.Refs.ReflogNames(ctx, repo)
	if err != nil {
		return err
	}
	cutoff := int64(-1 << 63)
	if opts.ReflogExpiry != Forever {
		cutoff = now.Add(-opts.ReflogExpiry).UnixNano()
	}
	for _, n := range names {
		all := gone[n]
		if !all && opts.ReflogExpiry == Forever {
			continue
		}
		if opts.DryRun {
			k, err := c.countExpired(ctx, repo, n, cutoff, all)
			if err != nil {
				return err
			}
			res.ReflogEntries += k
			continue
		}
		k, err := c.Refs.ExpireReflog(ctx, repo, n, cutoff, all)
		if err != nil {
			return err
		}
		res.ReflogEntries += k
	}
	// 3. Mark from every ref and reflog entry, then list the rest.
	m := newMarker(c.Objects, repo)
	if err := c.markRoots(ctx, m, repo, opts, gone, cutoff); err != nil {
		return err
	}
	candidates := map[objects.Hash]int64{}
	total := 0
	err = c.Objects.ForEachObject(ctx, repo, func(o objects.StoredObject) error {
		total++
		if !m.marked[o.Hash] {
			candidates[o.Hash] = o.Bytes
		}
		return nil
	})
	if err != nil {
		return err
	}
	// 4. Sweep.
	doomed := map[objects.Hash]int64{}
	err = col.Sweep(func(sw *objects.Sweeper) error {
		held := time.Now()
		defer func() { res.LongestSweep = max(res.LongestSweep, time.Since(held)) }()
		if err := c.markRoots(ctx, m, repo, opts, gone, cutoff); err != nil {
			return err
		}
		if err := m.mark(ctx, sw.Touched(repo)...); err != nil {
			return err
		}
		if err := m.mark(ctx, sw.Recent(repo, now.Add(-opts.Grace))...); err != nil {
			return err
		}
		for h, n := range candidates {
			if !m.marked[h] {
				doomed[h] = n
			}
		}
		if opts.DryRun {
			for h := range doomed {
				res.Objects++
				res.ObjectBytes += candidates[h]
			}
			return nil
		}
		freed, err := sw.Delete(ctx, repo, doomed, func(w kv.Writer) error {
			_, err := c.Catalog.ForgetBlobs(w, repo, doomed)
			return err
		})
		res.Objects += freed.Objects
		res.ObjectBytes += freed.ObjectBytes
		res.DeltaRecords += freed.DeltaRecords
		return err
	})
	if err != nil {
		return fmt.Errorf("sweep objects: %w", err)
	}
	res.KeptObjects += total - len(doomed)
	for h := range doomed {
		c.report(repo, "object", h.String(), candidates[h])
	}
	c.log().Info("gc: objects", "repo", repo, "deleted", len(doomed), "kept", total-len(doomed), "dry_run", opts.DryRun)
	// 5. Warehouse files.
	return c.files(ctx, repo, m, doomed, opts, now, res)
}

// expireRun deletes every ref under refs/runs/<id>/ in one
// compare-and-swap and returns their names (dry run: only returns them).
func (c *Collector) expireRun(ctx context.Context, repo objects.RepoName, id hooks.RunID, dry bool) ([]refs.Name, error) {
	list, err := c.Refs.List(ctx, repo, refs.RunsPrefix+string(id)+"/")
	if err != nil {
		return nil, err
	}
	var ups []refs.Update
	var names []refs.Name
	for _, r := range list {
		if r.Target != "" {
			continue
		}
		ups = append(ups, refs.Update{Name: r.Name, Old: r.Hash, New: objects.ZeroHash})
		names = append(names, r.Name)
	}
	if len(ups) == 0 || dry {
		return names, nil
	}
	if err := c.Refs.Update(ctx, repo, ups, nil, "gc: run "+string(id)+" expired"); err != nil {
		return nil, err
	}
	return names, nil
}

// countExpired counts what ExpireReflog would delete.
func (c *Collector) countExpired(ctx context.Context, repo objects.RepoName, n refs.Name, cutoff int64, all bool) (int, error) {
	log, err := c.Refs.Reflog(ctx, repo, n)
	if err != nil {
		return 0, err
	}
	if all {
		// The run ref's deletion appends one more entry, expired with
		// the rest.
		return len(log) + 1, nil
	}
	k := 0
	for _, e := range log {
		if e.UnixNano < cutoff {
			k++
		}
	}
	if _, err := c.Refs.Get(ctx, repo, n); err == nil && k == len(log) && k > 0 {
		k-- // the ref's newest entry stays
	}
	return k, nil
}

// markRoots marks from every ref of repo and every reflog entry that
// stays. In a dry run, the refs and entries it would expire are skipped.
func (c *Collector) markRoots(ctx context.Context, m *marker, repo objects.RepoName, opts Options, gone map[refs.Name]bool, cutoff int64) error {
	all, err := c.Refs.List(ctx, repo, "")
	if err != nil {
		return err
	}
	var roots []objects.Hash
	for _, r := range all {
		if r.Target != "" || (opts.DryRun && gone[r.Name]) {
			continue
		}
		roots = append(roots, r.Hash)
	}
	names, err := c.Refs.ReflogNames(ctx, repo)
	if err != nil {
		return err
	}
	for _, n := range names {
		if opts.DryRun && gone[n] {
			continue
		}
		log, err := c.Refs.Reflog(ctx, repo, n)
		if err != nil {
			return err
		}
		exists := false
		if opts.DryRun {
			_, err := c.Refs.Get(ctx, repo, n)
			exists = err == nil
		}
		for i, e := range log {
			if opts.DryRun && e.UnixNano < cutoff && !(exists && i == len(log)-1) {
				continue // would expire (a ref's newest entry stays)
			}
			roots = append(roots, e.Old, e.New)
		}
	}
	return m.mark(ctx, roots...)
}

// marker marks objects reachable from roots.
type marker struct {
	s       *objects.Store
	repo    objects.RepoName
	marked  map[objects.Hash]bool
	commits []objects.Hash // marked commits, for their table pointers
}

func newMarker(s *objects.Store, repo objects.RepoName) *marker {
	return &marker{s: s, repo: repo, marked: map[objects.Hash]bool{}}
}

// mark marks roots and everything they reach. An object the repo does
// not hold is skipped (a ref into nothing is not this package's to fix;
// a gitlink to a commit of another repository names nothing here).
func (m *marker) mark(ctx context.Context, roots ...objects.Hash) error {
	stack := make([]objects.Hash, 0, len(roots))
	for _, h := range roots {
		if !h.IsZero() && !m.marked[h] {
			stack = append(stack, h)
		}
	}
	for n := 0; len(stack) > 0; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if m.marked[h] {
			continue
		}
		typ, links, err := m.s.Links(ctx, m.repo, h)
		if errors.Is(err, objects.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mark %s: %w", h, err)
		}
		m.marked[h] = true
		if typ == plumbing.CommitObject {
			m.commits = append(m.commits, h)
		}
		for _, l := range links {
			if !l.IsZero() && !m.marked[l] {
				stack = append(stack, l)
			}
		}
	}
	return nil
}

// files deletes the warehouse files of repo that no surviving pointer
// names and that are older than the grace period.
func (c *Collector) files(ctx context.Context, repo objects.RepoName, m *marker, doomed map[objects.Hash]int64, opts Options, now time.Time, res *Result) error {
	set, err := c.Catalog.NewFileSet(ctx, repo)
	if err != nil {
		return err
	}
	ptrs := map[objects.Hash]bool{}
	for _, h := range m.commits {
		bs, err := catalog.TablesTree(ctx, c.Objects, repo, h)
		if err != nil {
			return fmt.Errorf("warehouse left alone: commit %s: %w", h, err)
		}
		for _, b := range bs {
			ptrs[b] = true
		}
	}
	written, err := c.Catalog.PointerBlobs(ctx, repo)
	if err != nil {
		return err
	}
	for _, h := range written {
		if _, gone := doomed[h]; gone {
			continue
		}
		if ok, err := c.Objects.Has(ctx, repo, h); err != nil {
			return err
		} else if ok {
			ptrs[h] = true
		}
	}
	hs := make([]objects.Hash, 0, len(ptrs))
	for h := range ptrs {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].String() < hs[j].String() })
	for _, h := range hs {
		if err := set.AddPointer(ctx, h); err != nil {
			return fmt.Errorf("warehouse left alone: %w", err)
		}
	}
	var all []catalog.WarehouseFile
	if err := c.Catalog.WarehouseFiles(ctx, repo, func(f catalog.WarehouseFile) error {
		all = append(all, f)
		return nil
	}); err != nil {
		return fmt.Errorf("warehouse left alone: list: %w", err)
	}
	young := func(f catalog.WarehouseFile) bool { return f.Time.After(now.Add(-opts.Grace)) }
	for _, f := range all {
		if young(f) {
			set.AddYoung(ctx, f.Name)
		}
	}
	for _, f := range all {
		if _, kept := set.Names[f.Name]; kept || young(f) {
			res.KeptFiles++
			continue
		}
		if !opts.DryRun {
			if err := c.Catalog.RemoveWarehouseFile(ctx, repo, f.Name); err != nil {
				return fmt.Errorf("remove %s: %w", f.Name, err)
			}
		}
		res.Files++
		res.FileBytes += f.Bytes
		c.report(repo, "file", f.Name, f.Bytes)
	}
	return nil
}
