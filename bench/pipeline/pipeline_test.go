package pipeline

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/catalog"
	wexec "github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/node"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

func TestMain(m *testing.M) {
	wexec.Init()
	if len(os.Args) > 1 && os.Args[1] == "node" {
		os.Exit(node.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const example = "../../examples/orders"

func sh(b *testing.B, dir string, args ...string) string {
	b.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@x", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@x")
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// BenchmarkPush reports ns per pipeline push through the hook ("weir")
// and per in-process run of the same nodes ("bare"), and their ratio.
func BenchmarkPush(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("sandboxes need root")
	}
	ctx := context.Background()
	state, _ := os.MkdirTemp("", "weir-bench-exec-")
	defer os.RemoveAll(state)
	sb, err := wexec.New(wexec.Config{StateDir: state})
	if err != nil {
		b.Skipf("sandboxes unavailable: %v", err)
	}
	defer sb.Close()
	db, err := objects.OpenFS("", vfs.NewMem())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	objs := objects.New(db, objects.Limits{})
	rs := refs.NewDB(objs)
	wh, err := catalog.NewLocalWarehouse(filepath.Join(b.TempDir(), "wh"))
	if err != nil {
		b.Fatal(err)
	}
	cat := catalog.New(objs, rs, wh)
	hook, err := hooks.NewPipeline(hooks.PipelineConfig{Refs: rs, Catalog: cat, Runner: sb, WorkDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	src, _ := filepath.Abs(example)
	sh(b, work, "cp", "-r", src+"/.", work)
	sh(b, work, "git", "init", "-q", "-b", "main")
	sh(b, work, "git", "add", "-A")
	sh(b, work, "git", "commit", "-q", "-m", "orders")
	head := sh(b, work, "git", "rev-parse", "HEAD")
	packCmd := exec.Command("git", "pack-objects", "--revs", "--stdout", "-q")
	packCmd.Dir = work
	packCmd.Stdin = strings.NewReader(head + "\n")
	pack, err := packCmd.Output()
	if err != nil {
		b.Fatal(err)
	}

	var weir, bare time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// weir: the hook plans and runs the pipeline in sandboxes.
		q := objs.NewQuarantine(objects.RepoName("bench"))
		hashes, err := q.IngestPack(ctx, bytes.NewReader(pack))
		if err != nil || len(hashes) == 0 {
			b.Fatal(err)
		}
		var tip objects.Hash
		copy(tip[:], mustHex(b, head))
		began := time.Now()
		res, err := hook.PreReceive(ctx, &hooks.Push{Repo: "bench", Quarantine: q, Progress: io.Discard,
			Commands: []hooks.Command{{Name: "refs/heads/main", New: tip}}})
		weir += time.Since(began)
		q.Close()
		if err != nil || len(res.Refused) > 0 {
			b.Fatalf("%v %v", err, res.Refused)
		}

		// bare: the same runners in process, no sandbox, no catalog.
		began = time.Now()
		bareRun(b, ctx, work)
		bare += time.Since(began)
	}
	b.StopTimer()
	b.ReportMetric(float64(weir.Nanoseconds())/float64(b.N), "weir-ns/push")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/push")
	b.ReportMetric(float64(weir)/float64(bare), "weir/bare")
}

func mustHex(b *testing.B, s string) []byte {
	out := make([]byte, 20)
	for i := range out {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			if c >= 'a' {
				v |= byte(c-'a') + 10
			} else {
				v |= byte(c - '0')
			}
		}
		out[i] = v
	}
	return out
}

// bareRun runs the example's four nodes with the node package directly.
func bareRun(b *testing.B, ctx context.Context, work string) {
	root := b.TempDir()
	out := filepath.Join(root, "out")
	tmp := filepath.Join(root, "tmp")
	for _, d := range []string{out, tmp} {
		os.MkdirAll(d, 0o755)
	}
	in := func(tables ...string) string {
		d, _ := os.MkdirTemp(root, "in")
		for _, t := range tables {
			os.MkdirAll(filepath.Join(d, t), 0o755)
			os.Link(filepath.Join(out, t+".parquet"), filepath.Join(d, t, "part-0.parquet"))
		}
		return d
	}
	steps := []struct {
		run     func(context.Context, *node.Job) error
		src     string
		inputs  []string
		outputs []string
	}{
		{func(ctx context.Context, j *node.Job) error { _, err := node.Seed(ctx, j); return err }, "seeds/raw_orders.csv", nil, []string{"main.raw_orders"}},
		{func(ctx context.Context, j *node.Job) error { _, err := node.SQL(ctx, j); return err }, "models/clean_orders.sql", []string{"main.raw_orders"}, []string{"main.clean_orders"}},
		{func(ctx context.Context, j *node.Job) error { _, err := node.Python(ctx, j); return err }, "models/revenue.py", []string{"main.clean_orders"}, []string{"main.revenue"}},
		{func(ctx context.Context, j *node.Job) error { _, err := node.Expectation(ctx, j); return err }, "expectations/revenue_positive.sql", []string{"main.revenue"}, nil},
	}
	for _, s := range steps {
		d := in(s.inputs...)
		code := filepath.Join(d, node.CodeInput, filepath.Base(s.src))
		os.MkdirAll(filepath.Dir(code), 0o755)
		data, err := os.ReadFile(filepath.Join(work, s.src))
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(code, data, 0o644)
		j := &node.Job{Dirs: node.Dirs{In: d, Out: out, Tmp: tmp}, Source: code, Namespace: "main", Inputs: s.inputs, Outputs: s.outputs, Stdout: io.Discard}
		if err := s.run(ctx, j); err != nil {
			b.Fatalf("%s: %v", s.src, err)
		}
	}
}
