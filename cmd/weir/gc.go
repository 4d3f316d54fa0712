package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weir-dev/weir/gc"
	"github.com/weir-dev/weir/objects"
)

// retention is a flag value for an age: a Go duration, or a number of
// days ("14d"), or "never" (gc.Forever).
type retention struct{ d *time.Duration }

func (r retention) String() string {
	if r.d == nil {
		return ""
	}
	return retentionText(*r.d)
}

func retentionText(d time.Duration) string {
	switch {
	case d == gc.Forever:
		return "never"
	case d > 0 && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (r retention) Set(s string) error {
	d, err := parseRetention(s)
	if err != nil {
		return err
	}
	*r.d = d
	return nil
}

func parseRetention(s string) (time.Duration, error) {
	if s == "never" {
		return gc.Forever, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%q: want a duration (90m, 36h), days (14d) or never", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration (90m, 36h), days (14d) or never", s)
	}
	return d, nil
}

// gcFlags are the knobs of a collection, shared by weir gc and weir serve.
type gcFlags struct {
	opts gc.Options
}

func (g *gcFlags) register(fs *flag.FlagSet) {
	g.opts = gc.DefaultOptions()
	fs.Var(retention{&g.opts.Grace}, "gc-grace", "garbage collection: warehouse files younger than this, and objects written within it, are kept with what they name (in-flight runs and REST commits); must exceed the longest run")
	fs.Var(retention{&g.opts.KeepFailedRuns}, "keep-failed-runs", "garbage collection: how long a run that did not land is kept under refs/runs/<id>/ (its code, partial data and log): a duration, days (14d), or never")
	fs.Var(retention{&g.opts.KeepRuns}, "keep-runs", "garbage collection: how long a successful run's log is kept under refs/runs/<id>/log (its data stays on its branch): a duration, days, or never")
	fs.Var(retention{&g.opts.ReflogExpiry}, "reflog-expiry", "garbage collection: reflog entries older than this are deleted (a ref's newest entry stays); until then what they name is kept: a duration, days, or never")
}

const gcUsage = `usage: weir gc [--data DIR] [--dry-run] [--repo REPO] [flags]

Garbage collection, with weir serve stopped (Pebble allows one process;
weir serve collects by itself every --gc-every): expires runs and reflog
entries past their retention, deletes the objects no ref or reflog entry
reaches, and the warehouse files that no table pointer of a kept data
commit names (older than --gc-grace). Prints what it freed; --dry-run
prints what it would free and changes nothing.

flags:
`

func runGC(args []string) error {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory (as given to weir serve)")
	dry := fs.Bool("dry-run", false, "change nothing; print what would be freed")
	repoFlag := fs.String("repo", "", "collect only this repo (default: every repo)")
	verbose := fs.Bool("v", false, "list every run, object and file freed")
	var wf warehouseFlags
	wf.register(fs)
	var g gcFlags
	g.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), gcUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see weir gc --help)", fs.Arg(0))
	}
	opts := g.opts
	opts.DryRun = *dry
	if *repoFlag != "" {
		repo, err := objects.ParseRepoName(*repoFlag)
		if err != nil {
			return fmt.Errorf("--repo: %w", err)
		}
		opts.Repos = []objects.RepoName{repo}
	}
	off, err := openOffline(*data, wf)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("the server is running, and it collects by itself every --gc-every (default 1h; see /metrics for the last one); stop weir serve to collect now (the database is locked: %v)", err)
		}
		return err
	}
	defer off.close()
	return gcCommand(context.Background(), os.Stdout, off, opts, *verbose)
}

// gcCommand runs one collection over an offline database and prints it.
func gcCommand(ctx context.Context, out io.Writer, off *dataStores, opts gc.Options, verbose bool) error {
	c := &gc.Collector{Objects: off.objs, Refs: off.refs, Catalog: off.cat, Logger: offlineLogger()}
	if verbose {
		verb := "deleted"
		if opts.DryRun {
			verb = "would delete"
		}
		c.Report = func(repo objects.RepoName, kind, what string, n int64) {
			if kind == "run" {
				fmt.Fprintf(out, "%s: %s run %s\n", repo, verb, what)
				return
			}
			fmt.Fprintf(out, "%s: %s %s %s (%d bytes)\n", repo, verb, kind, what, n)
		}
	}
	res, err := c.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprint(out, res.String())
	if len(res.Errors) > 0 {
		return fmt.Errorf("%d repos not fully collected (see above)", len(res.Errors))
	}
	return nil
}
