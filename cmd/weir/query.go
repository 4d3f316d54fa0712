package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks/node"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

func init() {
	register(command{name: "query", summary: "run a read-only SQL query over a repo's tables at a branch, tag or data commit", run: runQuery})
	serveSetup = append(serveSetup, func(a *serveApp) error {
		if a.SSH == nil {
			return nil
		}
		a.SSH.Commands["query"] = func(ctx context.Context, req *gitserver.SSHRequest) int {
			return sshQuery(ctx, a, req)
		}
		return nil
	})
}

const queryUsage = `usage: weir query [--data DIR] [--warehouse ...] --repo REPO [--ref REF] "SELECT ..."

Run one read-only SELECT over the tables of REPO at REF (a branch, a data
tag or a data commit; default main). Each table is a view ns.table. The
result is printed as tab-separated values with a header line.

The local form opens the data directory itself, so it needs the server
stopped; against a running server use SSH:

  ssh -p 7422 git@HOST weir query REPO REF "SELECT ..."

flags:
`

func runQuery(args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory of the server (stopped)")
	repo := fs.String("repo", "", "repo name")
	ref := fs.String("ref", "main", "branch, data tag or data commit")
	maxRows := fs.Int("max-rows", 10000, "rows printed at most")
	timeout := fs.Duration("timeout", 60*time.Second, "query time limit")
	var wf warehouseFlags
	wf.register(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), queryUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *repo == "" || fs.NArg() == 0 {
		fs.Usage()
		return errors.New("need --repo and a query")
	}
	rn, err := objects.ParseRepoName(*repo)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := objects.Open(filepath.Join(*data, "pebble"))
	if err != nil {
		return fmt.Errorf("open %s (is weir serve running? then use ssh ... weir query): %w", *data, err)
	}
	defer db.Close()
	objs := objects.New(db, objects.Limits{})
	wh, err := openWarehouse(*data, wf)
	if err != nil {
		return err
	}
	cat := catalog.New(objs, refs.NewDB(objs), wh)
	return queryAt(ctx, cat, rn, *ref, strings.Join(fs.Args(), " "), os.Stdout, node.QueryOptions{MaxRows: *maxRows, Timeout: *timeout})
}

// queryAt resolves ref to a data commit and runs q over its tables. Its
// error names tables and repo-relative files, never a server path: the
// query sees its files by descriptor (node.Query) and the catalog's
// errors pass through Redact.
func queryAt(ctx context.Context, cat *catalog.Catalog, repo objects.RepoName, ref, q string, w io.Writer, o node.QueryOptions) error {
	err := queryFiles(ctx, cat, repo, ref, q, w, o)
	if err != nil {
		return errors.New(cat.Redact(err.Error()))
	}
	return nil
}

func queryFiles(ctx context.Context, cat *catalog.Catalog, repo objects.RepoName, ref, q string, w io.Writer, o node.QueryOptions) error {
	h, _, err := cat.Resolve(ctx, repo, ref)
	if err != nil {
		return err
	}
	tabs, err := cat.Tables(ctx, repo, h)
	if err != nil {
		return err
	}
	files := map[string][]node.QueryFile{}
	for t := range tabs {
		fs, err := cat.TableFiles(ctx, repo, h, t)
		if err != nil {
			return err
		}
		for _, f := range fs {
			files[t.String()] = append(files[t.String()], node.QueryFile{Path: f.Path, Name: f.Name})
		}
	}
	return node.Query(ctx, files, q, w, o)
}

// sshQuery is "weir query REPO REF SELECT ..." over SSH.
func sshQuery(ctx context.Context, a *serveApp, req *gitserver.SSHRequest) int {
	if len(req.Args) < 4 {
		fmt.Fprintln(req.Stderr, `usage: weir query REPO REF "SELECT ..."`)
		return 2
	}
	repo, err := objects.ParseRepoName(strings.TrimSuffix(req.Args[1], ".git"))
	if err != nil || !req.Can(repo, access.PermRead) {
		fmt.Fprintf(req.Stderr, "weir query: repo %q not found or not readable\n", req.Args[1])
		return 1
	}
	cat, err := serveCatalog(a)
	if err != nil {
		fmt.Fprintf(req.Stderr, "weir query: %v\n", err)
		return 1
	}
	q := strings.Join(req.Args[3:], " ")
	if err := queryAt(ctx, cat, repo, req.Args[2], q, req.Stdout, node.QueryOptions{}); err != nil {
		fmt.Fprintf(req.Stderr, "weir query: %s\n", strings.Join(strings.Fields(err.Error()), " "))
		return 1
	}
	return 0
}
