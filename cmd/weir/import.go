package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/objects"
)

const importUsage = `usage: weir import --repo REPO --branch BRANCH --table NS.TABLE [--data DIR] [flags] FILE...

Imports FILEs (.parquet or .csv, local paths or s3://bucket/key, or "-":
stdin, with --format) into table NS.TABLE on data branch BRANCH as one data
commit (refs/data/BRANCH moves by compare-and-swap; created if absent). The
branch's code must exist (push it first); a require-run branch (weir rule)
takes no import: import into another branch and merge. CSV column types are
inferred; the first row is the header.

Offline (--data) weir import opens the database directly: stop weir serve
first (Pebble allows one process). While it runs, an admin imports over
SSH: ssh -p 7422 HOST weir import ... (no --data); a local FILE is then a
path under the server's --import-dir (default <data>/imports), or "-" to
send the file itself:
  ssh -p 7422 HOST weir import --repo demo --table raw.orders --format csv - < orders.csv
s3:// sources use the --s3-* flags (online: the server's) and AWS_* credentials.

flags:
`

// runImport is "weir import" offline.
func runImport(args []string) error { return runOfflineAdmin(importAdmin, args) }

// importAdmin is "weir import", offline and over SSH.
var importAdmin = adminCommand{name: "import", usage: importUsage, db: true, define: defineImport}

func defineImport(fs *flag.FlagSet) func(context.Context, *adminEnv, []string) error {
	repoFlag := fs.String("repo", "", "repo name, e.g. team/demo")
	branch := fs.String("branch", "main", "data branch to write")
	tableFlag := fs.String("table", "", "target table, NS.TABLE ([a-z0-9_] each)")
	mode := fs.String("mode", catalog.ModeAppend, "append (add rows; creates the table) or replace (the files become the table)")
	message := fs.String("m", "", "commit message (default: what changed)")
	format := fs.String("format", "", `FILE "-" (stdin): csv or parquet`)
	return func(ctx context.Context, env *adminEnv, files []string) error {
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
		stdin := 0
		for _, f := range files {
			if f == "-" {
				stdin++
			}
		}
		if stdin > 1 {
			return errors.New(`"-" (stdin) may be given once`)
		}
		if stdin == 1 && *format != "csv" && *format != "parquet" {
			return errors.New(`FILE "-" reads stdin: say what it holds with --format csv or --format parquet`)
		}
		st, err := env.stores()
		if err != nil {
			return err
		}
		if err := st.checkDataWrite(ctx, repo, *branch, "import into"); err != nil {
			return err
		}
		tmp, err := os.MkdirTemp("", "weir-import-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		src, err := env.sourceS3()
		if err != nil {
			return err
		}
		var local []string
		for i, f := range files {
			dir := fmt.Sprintf("%s/%d", tmp, i)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			if f == "-" || (env.importDir != "" && !strings.HasPrefix(f, "s3://")) {
				// Copied into dir first: FetchSource then reads only dir.
				if f, err = env.importFile(f, *format, dir); err != nil {
					return err
				}
			}
			p, err := catalog.FetchSource(ctx, f, dir, src)
			if err != nil {
				return err
			}
			local = append(local, p)
		}
		h, err := st.cat.WriteBranch(ctx, repo, *branch, []catalog.TableWrite{{Table: t, Files: local, Mode: *mode}},
			catalog.CommitInfo{RunID: "import", Message: *message})
		if err != nil {
			return err
		}
		tabs, err := st.cat.Tables(ctx, repo, h)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Out, "imported %d file(s) into %s on %s: data commit %s, %d rows\n", len(files), t, *branch, h, tabs[t].Rows)
		return nil
	}
}

// importFile copies an import source into dir and returns the copy: "-"
// is stdin (at most env.maxStdin bytes), anything else a path under
// env.importDir, opened through os.Root so that "..", absolute paths
// outside it and symlinks leading out are refused.
func (env *adminEnv) importFile(f, format, dir string) (string, error) {
	var in io.Reader
	name := "stdin." + format
	if f == "-" {
		in = env.Stdin
		if env.maxStdin > 0 {
			in = io.LimitReader(env.Stdin, env.maxStdin+1)
		}
	} else {
		rel := f
		if filepath.IsAbs(f) {
			r, err := filepath.Rel(env.importDir, f)
			if err != nil || r == ".." || strings.HasPrefix(r, "../") {
				return "", fmt.Errorf("%s is outside the server's import folder %s: put the file there, or send it on stdin (FILE -, --format csv|parquet)", f, env.importDir)
			}
			rel = r
		}
		root, err := os.OpenRoot(env.importDir)
		if err != nil {
			return "", err
		}
		defer root.Close()
		fh, err := root.Open(rel)
		if err != nil {
			return "", fmt.Errorf("%s: not a file in the server's import folder %s (paths are relative to it; .. and symlinks out are refused): %w", f, env.importDir, errors.Unwrap(err))
		}
		defer fh.Close()
		if fi, err := fh.Stat(); err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s: not a regular file in the server's import folder", f)
		}
		in, name = fh, filepath.Base(rel)
	}
	dst := filepath.Join(dir, name)
	out, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if f == "-" && env.maxStdin > 0 && n > env.maxStdin {
		return "", fmt.Errorf("stdin holds more than %d bytes: put the file in the server's import folder, or on S3", env.maxStdin)
	}
	return dst, nil
}
