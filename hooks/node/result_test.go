package node

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-dev/weir/hooks/contract"
)

// TestMain lets the test binary act as the runner ("<binary> node ...")
// when WEIR_NODE_TEST_RUNNER is set, so that Main runs in a process of its
// own (it makes its process non-dumpable).
func TestMain(m *testing.M) {
	if os.Getenv("WEIR_NODE_TEST_RUNNER") == "1" && len(os.Args) > 1 && os.Args[1] == contract.Command {
		os.Exit(Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runMain runs Main in a child process with a pipe as --result-fd 3 and
// returns its exit status, its output and the bytes on the pipe.
func runMain(t *testing.T, a contract.Args) (int, string, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a.ResultFD = 3
	cmd := osexec.Command(os.Args[0], a.Argv()...)
	cmd.Env = append(os.Environ(), "WEIR_NODE_TEST_RUNNER=1")
	cmd.ExtraFiles = []*os.File{w}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var res strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		res.Write(buf[:n])
		if err != nil {
			break
		}
	}
	cmd.Wait()
	return cmd.ProcessState.ExitCode(), out.String(), res.String()
}

// TestMainReportsResult: the runner's verdict is on the result
// descriptor, in the contract's one encoding, whatever the node prints; a
// Python script neither inherits the descriptor nor finds it at /dev/fd.
func TestMainReportsResult(t *testing.T) {
	for _, tc := range []struct {
		name, file, src string
		kind            string
		outputs         []string
		code            int
		result          string // exact, or a prefix when it ends in "*"
		output          string // in the output
	}{
		{"sql ok", "m.sql", "SELECT 1 AS a UNION ALL SELECT 2", contract.KindSQL, []string{"main.m"}, 0, "{\"status\":\"ok\"}\n", ""},
		{"sql fails", "m.sql", "SELECT nope FROM (SELECT 1 AS a)", contract.KindSQL, []string{"main.m"}, 1,
			"{\"status\":\"failed\",\"message\":\"weir node sql: Binder Error: Referenced column \\\"nope\\\" not found*", "weir node sql: Binder Error"},
		{"expectation fails", "e.sql", "SELECT 'weir-rows main.x 1' AS a FROM range(3)", contract.KindExpect, nil, 1,
			"{\"status\":\"expectation-failed\",\"failing_rows\":3}\n", "3 failing rows"},
		{"expectation passes", "e.sql", "SELECT 1 AS a WHERE false", contract.KindExpect, nil, 0, "{\"status\":\"ok\"}\n", ""},
		{"python cannot reach the descriptor", "p.py", `# weir: outputs = main.p
import os, errno
for name, f in [("inherited", lambda: os.write(3, b"{\"status\":\"ok\"}\n")),
                ("dev-fd", lambda: os.open("/dev/fd/3", os.O_WRONLY))]:
    try:
        f()
        print(name, "ALLOWED")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
print("weir-rows main.p 999")
open(os.environ["WEIR_OUT_MAIN_P"], "w").write("v\n1\n")
`, contract.KindPython, []string{"main.p"}, 0, "{\"status\":\"ok\"}\n", "inherited EBADF\ndev-fd ENOENT\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, f := stage(t, tc.file, tc.src)
			code, out, res := runMain(t, contract.Args{Kind: tc.kind, Source: f, Outputs: tc.outputs,
				DirIn: d.In, DirOut: d.Out, DirTmp: d.Tmp})
			want, prefix := strings.CutSuffix(tc.result, "*")
			if code != tc.code || (prefix && !strings.HasPrefix(res, want)) || (!prefix && res != want) || !strings.Contains(out, tc.output) {
				t.Fatalf("exit %d, result %q, output:\n%s\nwant exit %d, result %q, output with %q", code, res, out, tc.code, tc.result, tc.output)
			}
			if _, err := contract.Parse([]byte(res)); err != nil {
				t.Fatalf("result %q does not parse: %v", res, err)
			}
		})
	}
}

// TestSQLCannotReachDescriptors: DuckDB, locked to the node's dirs, opens
// no path outside them, however the path is spelled: not the runner's
// descriptors under /proc or /dev, not a way out of an allowed dir by "..".
func TestSQLCannotReachDescriptors(t *testing.T) {
	ctx := context.Background()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd := w.Fd()
	d, _ := stage(t, "x.sql", "SELECT 1")
	for _, p := range []string{
		"/proc/self/fd/" + strconv.Itoa(int(fd)),
		"/dev/fd/" + strconv.Itoa(int(fd)),
		"/dev/stdout",
		"/proc/self/status",
		filepath.Join(d.Tmp, "..", "..", "..", "..", "..", "..", "proc", "self", "status"),
		d.Tmp + "/../../../../../../../proc/self/status",
	} {
		for _, q := range []string{
			"SELECT * FROM read_text('" + p + "')",
			"SELECT 1 AS a) TO '" + p + "' (FORMAT csv); SELECT (1",
		} {
			d, f := stage(t, "x.sql", q)
			if _, err := SQL(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"main.x"}}); err == nil {
				t.Errorf("%s: ran", q)
			}
		}
		// COPY itself, as the runner's own statement would run it.
		j := &Job{Dirs: d}
		db, conn, err := j.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "COPY (SELECT 1 AS a) TO "+quote(p)+" (FORMAT csv)"); err == nil {
			t.Errorf("COPY TO %s ran", p)
		}
		conn.Close()
		db.Close()
	}
}
