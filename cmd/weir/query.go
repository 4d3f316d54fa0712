package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

const queryUsage = `usage: weir query [--data DIR] [--warehouse ...] --repo REPO [--ref REF] "SELECT ..."

Run one read-only SELECT over the tables of REPO at REF (a branch, a data
tag or a data commit, as git rev-parse takes them: main~1, main^2, a short
id of 4 or more digits; default main). Each table is a view ns.table. The
result is printed as tab-separated values with a header line. The query
runs in weir-node (next to weir, or on PATH), which holds the SQL engine.

The local form opens the data directory itself, so it needs the server
stopped; against a running server use SSH:

  ssh -p 7422 git@HOST weir query REPO REF "SELECT ..."

flags:
`

// Query bounds weir applies (the runner's defaults are the same).
const (
	queryMaxRows = 10000
	queryTimeout = 60 * time.Second
)

func runQuery(args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory of the server (stopped)")
	repo := fs.String("repo", "", "repo name")
	ref := fs.String("ref", "main", "branch, data tag or data commit (main~1, a short id, ...)")
	maxRows := fs.Int("max-rows", queryMaxRows, "rows printed at most")
	timeout := fs.Duration("timeout", queryTimeout, "query time limit")
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
	bin, err := findRunner()
	if err != nil {
		return err
	}
	code, err := localQuery(rn, *data, wf, bin, *ref, strings.Join(fs.Args(), " "), queryOptions{maxRows: *maxRows, timeout: *timeout})
	if err != nil {
		return err
	}
	if code != 0 {
		os.Exit(code) // weir-node said why, on stderr
	}
	return nil
}

// localQuery is weir query --data: the data directory opened here, the
// query run by weir-node as a plain process (the operator's own query on
// the operator's own files) that prints its answer on stdout and why it
// failed on stderr. It returns weir-node's exit status.
func localQuery(repo objects.RepoName, data string, wf warehouseFlags, bin, ref, q string, o queryOptions) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := pebblekv.Open(filepath.Join(data, "pebble"), offlineLogger())
	if err != nil {
		return 0, fmt.Errorf("open %s (is weir serve running? then use ssh ... weir query): %w", data, err)
	}
	defer db.Close()
	objs, err := objects.Open(db, objects.Limits{})
	if err != nil {
		return 0, err
	}
	wh, err := openWarehouse(data, wf)
	if err != nil {
		return 0, err
	}
	cat := catalog.New(objs, refs.NewDB(objs), wh, catalog.WithLogger(offlineLogger()))
	req, err := queryRequest(ctx, cat, repo, ref, q, o)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp("", "weir-query-*.json")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	b, err := contract.EncodeQueryRequest(req)
	if err == nil {
		_, err = f.Write(b)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	cmd := osexec.CommandContext(ctx, bin, contract.QueryArgs{Request: f.Name(), ResultFD: contract.NoResult}.Argv()...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *osexec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("weir-node: %w", err)
	}
	return 0, nil
}

// queryOptions bound a query; zero fields take weir's defaults.
type queryOptions struct {
	maxRows int
	timeout time.Duration
}

// queryRequest resolves ref to a data commit and makes the runner's
// request for q over its tables (their files as this machine has them).
// Its error names tables and repo-relative files, never a server path
// (the catalog's errors pass through Redact).
func queryRequest(ctx context.Context, cat *catalog.Catalog, repo objects.RepoName, ref, q string, o queryOptions) (contract.QueryRequest, error) {
	req, err := queryTables(ctx, cat, repo, ref)
	if err != nil {
		return req, errors.New(cat.Redact(err.Error()))
	}
	req.SQL = q
	req.MaxRows, req.Timeout = o.maxRows, o.timeout
	if req.MaxRows <= 0 {
		req.MaxRows = queryMaxRows
	}
	if req.Timeout <= 0 {
		req.Timeout = queryTimeout
	}
	return req, nil
}

func queryTables(ctx context.Context, cat *catalog.Catalog, repo objects.RepoName, ref string) (contract.QueryRequest, error) {
	var req contract.QueryRequest
	h, _, err := cat.Resolve(ctx, repo, ref)
	if err != nil {
		return req, err
	}
	tabs, err := cat.Tables(ctx, repo, h)
	if err != nil {
		return req, err
	}
	names := make([]catalog.TableName, 0, len(tabs))
	for t := range tabs {
		names = append(names, t)
	}
	sort.Slice(names, func(i, j int) bool { return names[i].String() < names[j].String() })
	for _, t := range names {
		fs, err := cat.TableFiles(ctx, repo, h, t)
		if err != nil {
			return req, err
		}
		qt := contract.QueryTable{Name: t.String(), Files: []contract.QueryFile{}}
		for _, f := range fs {
			qt.Files = append(qt.Files, contract.QueryFile{Path: f.Path, Name: f.Name})
		}
		req.Tables = append(req.Tables, qt)
	}
	return req, nil
}

// queryRunner runs weir query over SSH in weir-node: in a sandbox where
// the host can run them (the table files bound read-only under /in, no
// network, the answer streamed from its stdout, the verdict on its report
// pipe), else as a plain process.
type queryRunner struct {
	bin     string      // weir-node; "" when it is missing
	binErr  error       // why bin is ""
	sandbox exec.Runner // nil: a plain process
	workDir string      // staging of a sandboxed query (its request, its inputs' links)
	limits  exec.Limits // the server's node limits, which bound the sandbox
	hide    []string    // server folders cut from errors
}

// run runs req, writing the answer to stdout; its error is why the query
// failed, for the client.
func (qr *queryRunner) run(ctx context.Context, req contract.QueryRequest, stdout io.Writer) error {
	if qr.bin == "" {
		return qr.binErr
	}
	if qr.sandbox == nil {
		return qr.plain(ctx, req, stdout)
	}
	return qr.sandboxed(ctx, req, stdout)
}

// plain runs req in weir-node as a plain process, its result on a pipe.
func (qr *queryRunner) plain(ctx context.Context, req contract.QueryRequest, stdout io.Writer) error {
	f, err := os.CreateTemp("", "weir-query-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	b, err := contract.EncodeQueryRequest(req)
	if err == nil {
		_, err = f.Write(b)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	defer rd.Close()
	var stderr bytes.Buffer
	cmd := osexec.CommandContext(ctx, qr.bin, contract.QueryArgs{Request: f.Name(), ResultFD: 3}.Argv()...)
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = stdout, &stderr, []*os.File{wr}
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		return fmt.Errorf("weir-node: %w", err)
	}
	report, rerr := io.ReadAll(io.LimitReader(rd, contract.MaxResult+1))
	werr := cmd.Wait()
	if rerr != nil {
		return rerr
	}
	if res, err := contract.Parse(report); err == nil {
		return resultError(res)
	}
	why := fmt.Sprint(werr)
	if l := lastLine(stderr.Bytes()); l != "" {
		why += ": " + l
	}
	return fmt.Errorf("weir-node gave no result (%s)", why)
}

// sandboxed runs req in weir-node in a sandbox: each table's files
// hard-linked into a folder of its own, bound at /in/t<i> (a file that
// cannot be linked, being on another filesystem, is bound by itself at
// /in/f<j>), the request at /in/_query.
func (qr *queryRunner) sandboxed(ctx context.Context, req contract.QueryRequest, stdout io.Writer) error {
	if err := os.MkdirAll(qr.workDir, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(qr.workDir, "q-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	inputs := map[string]string{}
	mkdir := func(name string) (string, error) {
		d := filepath.Join(dir, name)
		inputs[name] = d
		return d, os.Mkdir(d, 0o755) // the sandbox's uid reads it
	}
	nfiles := 0
	for i := range req.Tables {
		t := &req.Tables[i]
		in := fmt.Sprintf("t%d", i)
		d, err := mkdir(in)
		if err != nil {
			return err
		}
		for k := range t.Files {
			f := &t.Files[k]
			name := fmt.Sprintf("%05d.parquet", k)
			if os.Link(f.Path, filepath.Join(d, name)) == nil {
				f.Path = exec.InputsDir + "/" + in + "/" + name
			} else {
				alone := fmt.Sprintf("f%d", nfiles)
				inputs[alone] = f.Path
				f.Path = exec.InputsDir + "/" + alone
			}
			nfiles++
		}
	}
	rd, err := mkdir("_query")
	if err != nil {
		return err
	}
	b, err := contract.EncodeQueryRequest(req)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(rd, "request.json"), b, 0o644); err != nil {
		return err
	}
	lim := qr.limits
	lim.Wall = req.Timeout + 10*time.Second // the runner's own timeout comes first
	if lim.CPU <= 0 || lim.CPU > 2 {
		lim.CPU = 2 // Query runs DuckDB on two threads
	}
	lim.OutputBytes = 1 << 20 // it writes nothing there
	lim.OpenFiles = max(lim.OpenFiles, exec.DefaultLimits().OpenFiles) + uint64(nfiles)
	var id [4]byte
	_, _ = rand.Read(id[:])
	args := contract.QueryArgs{Request: exec.InputsDir + "/_query/request.json", ResultFD: exec.ReportFD}
	res, err := qr.sandbox.Run(ctx, exec.Spec{
		ID:   "query-" + hex.EncodeToString(id[:]),
		Args: append([]string{exec.RunnerPath}, args.Argv()...),
		// No Go traceback: what the runner prints reaches the client.
		Env:           []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "GOTRACEBACK=none"},
		Inputs:        inputs,
		Weir:          true,
		Limits:        lim,
		Report:        true,
		Stdout:        stdout,
		AsyncTeardown: true,
	})
	if err != nil {
		return err
	}
	if rep, perr := contract.Parse(res.Report); perr == nil && !res.ReportTruncated && (res.Reason == exec.ReasonOK || res.Reason == exec.ReasonExit) {
		return resultError(rep)
	}
	if res.Reason == exec.ReasonOK || res.Reason == exec.ReasonExit {
		return fmt.Errorf("weir-node gave no result (exit status %d)", res.ExitCode)
	}
	return errors.New(res.Message)
}

// resultError is the runner's verdict on a query: nil, or why it failed.
func resultError(r contract.Result) error {
	switch r.Status {
	case contract.StatusOK:
		return nil
	case contract.StatusFailed:
		return errors.New(r.Message)
	}
	return fmt.Errorf("weir-node answered %s", r.Status)
}

// lastLine is the last non-empty line of b.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// sshQuery is "weir query REPO REF SELECT ..." over SSH.
func sshQuery(ctx context.Context, cat *catalog.Catalog, qr *queryRunner, req *gitserver.SSHRequest) int {
	if len(req.Args) < 4 {
		fmt.Fprintln(req.Stderr, `usage: weir query REPO REF "SELECT ..."`)
		return 2
	}
	repo, err := objects.ParseRepoName(strings.TrimSuffix(req.Args[1], ".git"))
	if err != nil || !req.Can(repo, access.PermRead) {
		fmt.Fprintf(req.Stderr, "weir query: repo %q not found or not readable\n", req.Args[1])
		return 1
	}
	q := strings.Join(req.Args[3:], " ")
	qreq, err := queryRequest(ctx, cat, repo, req.Args[2], q, queryOptions{})
	if err == nil {
		err = qr.run(ctx, qreq, req.Stdout)
	}
	if err != nil {
		msg := cat.Redact(err.Error())
		for _, p := range qr.hide {
			if p = strings.TrimSuffix(p, "/"); len(p) > 1 {
				msg = strings.ReplaceAll(strings.ReplaceAll(msg, p+"/", ""), p, "")
			}
		}
		fmt.Fprintf(req.Stderr, "weir query: %s\n", strings.Join(strings.Fields(msg), " "))
		return 1
	}
	return 0
}
