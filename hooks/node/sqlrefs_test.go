package node

import (
	"bytes"
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/hooks/contract"
)

// runner starts the test binary as the runner with argv, stdin and an
// optional result pipe at descriptor 3.
type runner struct {
	cmd            *osexec.Cmd
	stdin          *os.File // nil unless asked for
	result         *os.File
	stdout, stderr bytes.Buffer
}

func startRunner(t *testing.T, argv []string, stdin, result bool) *runner {
	t.Helper()
	r := &runner{cmd: osexec.Command(os.Args[0], argv...)}
	r.cmd.Env = append(os.Environ(), "WEIR_NODE_TEST_RUNNER=1")
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	var closeAfter []*os.File
	if stdin {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.cmd.Stdin, r.stdin = rd, wr
		closeAfter = append(closeAfter, rd)
	}
	if result {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.cmd.ExtraFiles, r.result = []*os.File{wr}, rd
		closeAfter = append(closeAfter, wr)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range closeAfter {
		f.Close()
	}
	return r
}

// wait waits for the runner and returns its exit status and result.
func (r *runner) wait() (int, string) {
	var res []byte
	if r.result != nil {
		res, _ = readAll(r.result)
		r.result.Close()
	}
	r.cmd.Wait()
	return r.cmd.ProcessState.ExitCode(), string(res)
}

func readAll(f *os.File) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(f)
	return b.Bytes(), err
}

// TestSQLRefsMain: weir-node sqlrefs reads the queries of its folder and
// answers for each in the contract's encoding; gated, it waits for "go"
// before it looks at the folder (filled meanwhile), and without "go" it
// gives up; a folder that is not 00000.sql... is refused.
func TestSQLRefsMain(t *testing.T) {
	dir := t.TempDir()
	src, answer := filepath.Join(dir, "src"), filepath.Join(dir, "answer.json")
	os.Mkdir(src, 0o755)
	a := contract.SQLRefsArgs{Sources: src, Answer: answer, Gate: true}
	r := startRunner(t, a.Argv(), true, false)
	time.Sleep(100 * time.Millisecond) // the runner waits; the folder is still empty
	for i, q := range []string{"SELECT * FROM raw.orders JOIN b USING (id)", "SELECT a,\nFROM WHERE", "SELECT 1; SELECT 2"} {
		if err := os.WriteFile(filepath.Join(src, contract.SQLSourceFile(i)), []byte(q), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.stdin.WriteString("go\n")
	r.stdin.Close()
	if code, _ := r.wait(); code != 0 {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	b, err := os.ReadFile(answer)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := contract.ParseSQLAnswer(b, 3)
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if q := ans.Queries[0]; len(q.Refs) != 2 || q.Refs[0] != (contract.SQLRef{Schema: "raw", Table: "orders", Offset: 14}) || q.Refs[1].Table != "b" {
		t.Errorf("query 0: %+v", q)
	}
	if e := ans.Queries[1].Error; e == nil || e.Message != `syntax error at or near "WHERE"` || e.Offset != 15 {
		t.Errorf("query 1: %+v", ans.Queries[1])
	}
	if e := ans.Queries[2].Error; e == nil || !strings.HasPrefix(e.Message, "2 statements") || e.Offset != -1 {
		t.Errorf("query 2: %+v", ans.Queries[2])
	}

	os.Remove(answer)
	r = startRunner(t, a.Argv(), true, false)
	r.stdin.Close() // no "go"
	if code, _ := r.wait(); code != 1 || !strings.Contains(r.stderr.String(), "given up") {
		t.Fatalf("without go: exit %d: %s", code, r.stderr.String())
	}
	if _, err := os.Stat(answer); err == nil {
		t.Fatal("an answer without go")
	}

	os.Remove(filepath.Join(src, contract.SQLSourceFile(0)))
	a.Gate = false
	r = startRunner(t, a.Argv(), false, false)
	if code, _ := r.wait(); code != 1 || !strings.Contains(r.stderr.String(), "are not 00000.sql to 00001.sql") {
		t.Fatalf("a gap in the queries: exit %d: %s", code, r.stderr.String())
	}
	r = startRunner(t, []string{contract.CommandSQLRefs, "--sources", src}, false, false)
	if code, _ := r.wait(); code != 2 {
		t.Fatalf("usage: exit %d: %s", code, r.stderr.String())
	}
}

// TestQueryMain: weir-node query answers exactly what Query writes; a
// failure is "weir query: <why>" on stderr without a result descriptor,
// and only the result (the same why) with one, stderr left empty.
func TestQueryMain(t *testing.T) {
	ctx := context.Background()
	d, f := stage(t, "orders.csv", "id,who\n1,ann\n2,bob\n3,a\tb\n")
	if _, err := Seed(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"raw.orders"}}); err != nil {
		t.Fatal(err)
	}
	files := []QueryFile{{Path: d.OutputFile("raw.orders"), Name: "raw/orders/data/a.parquet"}}
	request := func(t *testing.T, q string) string {
		req := contract.QueryRequest{SQL: q, MaxRows: 2, Timeout: time.Minute,
			Tables: []contract.QueryTable{{Name: "raw.orders", Files: []contract.QueryFile{{Path: files[0].Path, Name: files[0].Name}}}}}
		b, err := contract.EncodeQueryRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "request.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, q := range []string{"SELECT id, who FROM raw.orders ORDER BY id", "COPY raw.orders TO '/tmp/x.csv'", "SELECT * FROM nope"} {
		var want bytes.Buffer
		werr := Query(ctx, map[string][]QueryFile{"raw.orders": files}, q, &want, QueryOptions{MaxRows: 2, Timeout: time.Minute})
		t.Run(q, func(t *testing.T) {
			r := startRunner(t, contract.QueryArgs{Request: request(t, q), ResultFD: contract.NoResult}.Argv(), false, false)
			code, _ := r.wait()
			if r.stdout.String() != want.String() {
				t.Errorf("stdout %q, want %q", r.stdout.String(), want.String())
			}
			if werr == nil && (code != 0 || r.stderr.Len() > 0) || werr != nil && (code != 1 || r.stderr.String() != "weir query: "+werr.Error()+"\n") {
				t.Errorf("exit %d, stderr %q; Query's error %v", code, r.stderr.String(), werr)
			}

			r = startRunner(t, contract.QueryArgs{Request: request(t, q), ResultFD: 3}.Argv(), false, true)
			code, res := r.wait()
			if r.stdout.String() != want.String() || r.stderr.Len() > 0 {
				t.Errorf("with a result descriptor: stdout %q, stderr %q", r.stdout.String(), r.stderr.String())
			}
			wantRes := contract.OK()
			if werr != nil {
				wantRes = contract.Failed(werr.Error())
			}
			got, err := contract.Parse([]byte(res))
			if err != nil || got != wantRes || (code == 0) != (werr == nil) {
				t.Errorf("exit %d, result %q (%v), want %+v", code, res, err, wantRes)
			}
		})
	}
}
