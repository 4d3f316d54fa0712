package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/objects"
)

const importUsage = `usage: weir import --repo REPO --branch BRANCH --table NS.TABLE [flags] FILE...

Imports FILEs (.parquet or .csv, local paths or s3://bucket/key) into table
NS.TABLE on data branch BRANCH as one data commit (refs/data/BRANCH moves by
compare-and-swap; created if absent). The branch's code must exist (push it
first); a require-run branch (weir rule) takes no import: import into
another branch and merge. CSV column types are inferred; the
first row is the header.

weir import opens the database directly: stop weir serve first (Pebble
allows one process), or write through the Iceberg REST catalog at /iceberg/
while it runs. s3:// sources use the --s3-* flags and AWS_* credentials.

flags:
`

func runImport(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory (as given to weir serve)")
	repoFlag := fs.String("repo", "", "repo name, e.g. team/demo")
	branch := fs.String("branch", "main", "data branch to write")
	tableFlag := fs.String("table", "", "target table, NS.TABLE ([a-z0-9_] each)")
	mode := fs.String("mode", catalog.ModeAppend, "append (add rows; creates the table) or replace (the files become the table)")
	message := fs.String("m", "", "commit message (default: what changed)")
	var wf warehouseFlags
	wf.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), importUsage)
		fs.PrintDefaults()
	}
	files, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(files) == 0 {
		return errors.New("no FILE to import (see weir import --help)")
	}
	repo, err := objects.ParseRepoName(*repoFlag)
	if err != nil {
		return fmt.Errorf("--repo: %w", err)
	}
	t, err := catalog.ParseTableName(*tableFlag)
	if err != nil {
		return fmt.Errorf("--table: %w", err)
	}
	off, err := openOffline(*data, wf)
	if err != nil {
		return err
	}
	defer off.close()
	ctx := context.Background()
	if err := off.checkDataWrite(ctx, repo, *branch, "import into"); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "weir-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src, err := sourceS3(wf)
	if err != nil {
		return err
	}
	var local []string
	for i, f := range files {
		dir := fmt.Sprintf("%s/%d", tmp, i)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		p, err := catalog.FetchSource(ctx, f, dir, src)
		if err != nil {
			return err
		}
		local = append(local, p)
	}
	h, err := off.cat.WriteBranch(ctx, repo, *branch, []catalog.TableWrite{{Table: t, Files: local, Mode: *mode}},
		catalog.CommitInfo{RunID: "import", Message: *message})
	if err != nil {
		return err
	}
	tabs, err := off.cat.Tables(ctx, repo, h)
	if err != nil {
		return err
	}
	fmt.Printf("imported %d file(s) into %s on %s: data commit %s, %d rows\n", len(files), t, *branch, h, tabs[t].Rows)
	return nil
}
