package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// DefaultPython is the interpreter Python models run with.
const DefaultPython = "/usr/bin/python3"

// envName turns "clean.revenue" into "CLEAN_REVENUE".
func envName(t string) string { return strings.ToUpper(strings.ReplaceAll(t, ".", "_")) }

// Python runs a Python model. Before the script starts, each input table
// is written as CSV (with a header line) under Tmp, and the script's
// environment says where everything is:
//
//	WEIR_IN_<NS>_<TABLE>            the input as CSV
//	WEIR_IN_<NS>_<TABLE>_PARQUET    the input's folder of Parquet files
//	WEIR_OUT_<NS>_<TABLE>           where to write the output as CSV
//	WEIR_OUT_<NS>_<TABLE>_PARQUET   or as Parquet (if pyarrow is at hand)
//	WEIR_PARAM_<NAME>               each push parameter, verbatim
//
// After the script exits 0, each output (CSV, or Parquet if the script
// wrote that instead) is converted to Parquet in Out. It returns the row
// count of each output.
func Python(ctx context.Context, j *Job) (map[string]int64, error) {
	if len(j.Outputs) == 0 {
		return nil, errors.New("a Python model needs at least one output")
	}
	inDir := filepath.Join(j.Tmp, "weir-in")
	outDir := filepath.Join(j.Tmp, "weir-out")
	for _, d := range []string{inDir, outDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	db, conn, err := j.open(ctx)
	if err != nil {
		return nil, err
	}
	defer j.close(db, conn)

	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + j.Tmp,
		"LANG=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
	}
	for _, t := range j.Inputs {
		csv := filepath.Join(inDir, t+".csv")
		ns, name, _ := strings.Cut(t, ".")
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY %s.%s TO %s (FORMAT csv, HEADER)", ident(ns), ident(name), quote(csv))); err != nil {
			return nil, fmt.Errorf("input %s: %w", t, err)
		}
		env = append(env, "WEIR_IN_"+envName(t)+"="+csv, "WEIR_IN_"+envName(t)+"_PARQUET="+j.InputDir(t))
	}
	for _, t := range j.Outputs {
		env = append(env,
			"WEIR_OUT_"+envName(t)+"="+filepath.Join(outDir, t+".csv"),
			"WEIR_OUT_"+envName(t)+"_PARQUET="+filepath.Join(outDir, t+".parquet"))
	}
	names := make([]string, 0, len(j.Params))
	for k := range j.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		env = append(env, ParamEnvPrefix+k+"="+j.Params[k])
	}
	py := j.Python
	if py == "" {
		py = DefaultPython
	}
	cmd := osexec.CommandContext(ctx, py, j.Source)
	cmd.Dir = j.Tmp
	cmd.Env = env
	tail := &lastLine{w: j.Stdout}
	cmd.Stdout = tail
	cmd.Stderr = tail
	runErr := cmd.Run()
	if j.KillStrays {
		// Whatever the script left running dies before its outputs are
		// read: from here on only the runner acts in the sandbox.
		killStrays()
	}
	if runErr != nil {
		if l := tail.last(); l != "" {
			return nil, fmt.Errorf("%s: %s (%v)", filepath.Base(j.Source), l, runErr)
		}
		return nil, fmt.Errorf("%s: %w", filepath.Base(j.Source), runErr)
	}
	if fi, err := os.Lstat(outDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the script removed or replaced %s, where its outputs go", outDir)
	}
	counts := map[string]int64{}
	for _, t := range j.Outputs {
		csv := filepath.Join(outDir, t+".csv")
		pq := filepath.Join(outDir, t+".parquet")
		for _, p := range []string{csv, pq} {
			if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("the script's output %s is not a regular file (%s): write the file itself, not a link or a special file", filepath.Base(p), fi.Mode().Type())
			}
		}
		// The runner writes the output itself: whatever the script put
		// at its place in Out (a link to somewhere else) goes first.
		if err := os.RemoveAll(j.OutputFile(t)); err != nil {
			return nil, fmt.Errorf("output %s: %w", t, err)
		}
		var from string
		switch {
		case exists(pq):
			from = "read_parquet(" + quote(pq) + ")"
		case exists(csv):
			// The dialect is the one documented (and Python's csv module's
			// default): comma, double quote, quotes doubled. Naming it
			// spares DuckDB's dialect sniffing; column types are still
			// inferred.
			from = "read_csv(" + quote(csv) + `, header=true, auto_detect=true, delim=',', quote='"', escape='"')`
		default:
			return nil, fmt.Errorf("the script wrote no output for %s: write $WEIR_OUT_%s (CSV with a header) or $WEIR_OUT_%s_PARQUET", t, envName(t), envName(t))
		}
		n, err := copyTo(ctx, conn, "SELECT * FROM "+from, j.OutputFile(t))
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", t, err)
		}
		counts[t] = n
	}
	return counts, nil
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// lastLine passes writes on to w and remembers the last non-empty line.
type lastLine struct {
	w    io.Writer
	mu   sync.Mutex
	buf  []byte
	line string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if s := strings.TrimSpace(string(l.buf[:i])); s != "" {
			l.line = s
		}
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 4096 {
		l.buf = l.buf[len(l.buf)-4096:]
	}
	l.mu.Unlock()
	if l.w == nil {
		return len(p), nil
	}
	return l.w.Write(p)
}

func (l *lastLine) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := strings.TrimSpace(string(l.buf)); s != "" {
		return s
	}
	return l.line
}
