package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/weir-dev/weir/hooks/contract"
)

// DefaultPython is the interpreter Python models run with.
const DefaultPython = "/usr/bin/python3"

// envName turns "clean.revenue" into "CLEAN_REVENUE".
func envName(t string) string { return strings.ToUpper(strings.ReplaceAll(t, ".", "_")) }

// Python runs a Python model. Before the script's code runs, each input table
// is written as CSV (with a header line) under Tmp, and the script's
// environment says where everything is:
//
//	WEIR_IN_<NS>_<TABLE>            the input as CSV
//	WEIR_IN_<NS>_<TABLE>_PARQUET    the input's folder of Parquet files
//	WEIR_OUT_<NS>_<TABLE>           where to write the output as CSV
//	WEIR_OUT_<NS>_<TABLE>_PARQUET   or as Parquet (if pyarrow is at hand)
//	WEIR_PARAM_<NAME>               each push parameter, verbatim
//	WEIR_IO                         the exchange file the weir module reads
//	WEIR_RUNTIME                    the runtime's name
//
// The script runs through the weir module's launcher (py/weir/_launch.py),
// with the module and the repo's lib/ (LibInput) on PYTHONPATH: it runs
// the file as __main__, calls its model() function if it defined one and
// wrote no output (the function form), and words errors after the model's
// own file and line.
//
// After the script exits 0, each output is converted to Parquet in Out:
// Parquet if the script wrote that, else the CSV, read with the column
// types the weir module wrote beside it (<table>.schema.json, checked
// here: see outputSchema) or, for a CSV written by hand, with the types
// DuckDB infers. It returns the row count of each output.
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
	pyDir, err := writeModule(j.Tmp)
	if err != nil {
		return nil, fmt.Errorf("the weir module: %w", err)
	}
	db, conn, err := j.open(ctx)
	if err != nil {
		return nil, err
	}
	defer j.close(db, conn)

	display := j.File
	if display == "" {
		display = filepath.Base(j.Source)
	}
	runtime := j.Runtime
	if runtime == "" {
		runtime = "host"
	}
	pypath := pyDir
	lib := filepath.Join(j.In, contract.LibInput)
	if fi, err := os.Stat(lib); err == nil && fi.IsDir() {
		pypath = lib + ":" + pyDir
	} else {
		lib = ""
	}
	ioPath := filepath.Join(j.Tmp, "weir-io.json")
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + j.Tmp,
		"LANG=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
		"PYTHONPATH=" + pypath,
		"WEIR_IO=" + ioPath,
		"WEIR_RUNTIME=" + runtime,
		"WEIR_MODEL_FILE=" + display,
		"WEIR_MODEL_SOURCE=" + j.Source,
		"WEIR_LIB=" + lib,
	}
	exch := exchange{Inputs: map[string]exchangeIn{}, Outputs: map[string]exchangeOut{}}
	for _, t := range j.Inputs {
		in := exchangeIn{CSV: inputCSV(inDir, t), Parquet: j.InputDir(t)}
		exch.Inputs[t] = in
		env = append(env, "WEIR_IN_"+envName(t)+"="+in.CSV, "WEIR_IN_"+envName(t)+"_PARQUET="+in.Parquet)
	}
	for _, t := range j.Outputs {
		o := exchangeOut{
			CSV:     filepath.Join(outDir, t+".csv"),
			Parquet: filepath.Join(outDir, t+".parquet"),
			Schema:  filepath.Join(outDir, t+".schema.json"),
		}
		exch.Outputs[t] = o
		env = append(env, "WEIR_OUT_"+envName(t)+"="+o.CSV, "WEIR_OUT_"+envName(t)+"_PARQUET="+o.Parquet)
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
	// The interpreter starts before the inputs are exported and imports
	// what a model's start-up costs (pandas, the weir module) while DuckDB
	// writes the CSV files; the launcher runs the model only after the
	// line "go" on its stdin, which comes once every input and the
	// exchange file are complete. Without it (the export failed) the
	// launcher exits without running anything.
	cmd := osexec.CommandContext(ctx, py, filepath.Join(pyDir, "weir", "_launch.py"), j.Source)
	cmd.Dir = j.Tmp
	cmd.Env = append(env, "WEIR_GATE=1")
	tail := &lastLine{w: j.Stdout}
	cmd.Stdout = tail
	cmd.Stderr = tail
	gate, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		gate.Close()
		return nil, fmt.Errorf("%s: start %s: %w", display, py, err)
	}
	abort := func(err error) (map[string]int64, error) {
		gate.Close()
		cmd.Wait()
		return nil, err
	}
	for i, t := range j.Inputs {
		in, err := exportInput(ctx, conn, t, inDir, i)
		if err != nil {
			return abort(fmt.Errorf("input %s: %w", t, err))
		}
		in.Parquet = exch.Inputs[t].Parquet
		exch.Inputs[t] = in
	}
	b, err := json.Marshal(exch)
	if err != nil {
		return abort(err)
	}
	if err := os.WriteFile(ioPath, b, 0o644); err != nil {
		return abort(err)
	}
	// A launcher that already died (a broken interpreter) is reported by
	// Wait below with its last line; the write's own error adds nothing.
	_, _ = io.WriteString(gate, "go\n")
	gate.Close()
	runErr := cmd.Wait()
	if j.KillStrays {
		// Whatever the script left running dies before its outputs are
		// read: from here on only the runner acts in the sandbox.
		killStrays()
	}
	if runErr != nil {
		l := tail.last()
		switch {
		case l == "":
			return nil, fmt.Errorf("%s: %w", display, runErr)
		case strings.HasPrefix(l, display+":"):
			return nil, fmt.Errorf("%s (%v)", l, runErr)
		}
		return nil, fmt.Errorf("%s: %s (%v)", display, l, runErr)
	}
	if fi, err := os.Lstat(outDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the script removed or replaced %s, where its outputs go", outDir)
	}
	counts := map[string]int64{}
	for _, t := range j.Outputs {
		o := exch.Outputs[t]
		for _, p := range []string{o.CSV, o.Parquet, o.Schema} {
			if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("the script's output %s is not a regular file (%s): write the file itself, not a link or a special file", filepath.Base(p), fi.Mode().Type())
			}
		}
		// The runner writes the output itself: whatever the script put
		// at its place in Out (a link to somewhere else) goes first.
		if err := os.RemoveAll(j.OutputFile(t)); err != nil {
			return nil, fmt.Errorf("output %s: %w", t, err)
		}
		var q string
		switch {
		case exists(o.Parquet):
			q = "SELECT * FROM read_parquet(" + quote(o.Parquet) + ")"
		case exists(o.CSV) && exists(o.Schema):
			cols, err := outputSchema(o.Schema)
			if err != nil {
				return nil, fmt.Errorf("output %s: %w", t, err)
			}
			q = typedCSV(o.CSV, cols)
		case exists(o.CSV):
			// The dialect is the one documented (and Python's csv module's
			// default): comma, double quote, quotes doubled. Naming it
			// spares DuckDB's dialect sniffing; column types are still
			// inferred.
			q = "SELECT * FROM read_csv(" + quote(o.CSV) + `, header=true, auto_detect=true, delim=',', quote='"', escape='"')`
		default:
			return nil, fmt.Errorf("%s wrote no output for %s: call weir.write(%q, df), return it from model(), or write $WEIR_OUT_%s (CSV with a header) or $WEIR_OUT_%s_PARQUET", display, t, t, envName(t), envName(t))
		}
		n, err := copyTo(ctx, conn, q, j.OutputFile(t))
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
