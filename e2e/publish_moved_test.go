package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// Publish onto a moved branch (issue 11): a REST append to a branch while
// a pipeline runs on it does not waste the run when the run neither read
// nor wrote the appended table: its outputs land on top of the appended
// data in the same compare-and-swap. An append to a table the run reads
// refuses the push, naming the table; nothing moves beyond the append.

// restCatalog is iceberg-go's REST client on repo's branch main.
func restCatalog(t *testing.T, s *weirServer, repo string) icebergcat.Catalog {
	t.Helper()
	cat, err := icebergcat.Load(context.Background(), "weir", iceberg.Properties{"type": "rest", "uri": s.HTTP + "/iceberg", "warehouse": repo + "@main"})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

var idSchema = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)

// restAppend appends ids from..from+n-1 to ext.<name> through the REST
// catalog, creating the table first when create is set.
func restAppend(t *testing.T, cat icebergcat.Catalog, name string, create bool, from, n int) {
	t.Helper()
	ctx := context.Background()
	ident := table.Identifier{"ext", name}
	var tbl *table.Table
	var err error
	if create {
		if ok, _ := cat.CheckNamespaceExists(ctx, table.Identifier{"ext"}); !ok {
			if err := cat.CreateNamespace(ctx, table.Identifier{"ext"}, nil); err != nil {
				t.Fatal(err)
			}
		}
		isc, err := table.ArrowSchemaToIcebergWithFreshIDs(idSchema, false)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err = cat.CreateTable(ctx, ident, isc)
	} else {
		tbl, err = cat.LoadTable(ctx, ident)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	for i := range n {
		b.Append(int64(from + i))
	}
	col := b.NewArray()
	rec := array.NewRecordBatch(idSchema, []arrow.Array{col}, int64(n))
	at := array.NewTableFromRecords(idSchema, []arrow.RecordBatch{rec})
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, int64(n), nil); err != nil {
		t.Fatalf("REST append to ext.%s: %v", name, err)
	}
}

// slowSummary is a Python node that sleeps $WEIR_PARAM_nap seconds, then
// counts ext.events into main.summary. tok is in its file name, so its
// process can be found.
func slowSummary(tok, note string) (string, string) {
	return "models/slow_" + tok + ".py", `# weir: inputs = ext.events
# weir: outputs = main.summary
# ` + note + `
import csv, os, time
time.sleep(float(os.environ.get("WEIR_PARAM_nap", "0")))
with open(os.environ["WEIR_IN_EXT_EVENTS"]) as f:
    n = sum(1 for _ in csv.DictReader(f))
with open(os.environ["WEIR_OUT_MAIN_SUMMARY"], "w") as f:
    f.write("n\n%d\n" % n)
`
}

// pushDuringAppend pushes main with a napping node and, once the node's
// process is running, runs during (a REST append). It returns git's
// output and whether the push succeeded.
func pushDuringAppend(t *testing.T, dir, url, tok string, during func()) (string, bool) {
	t.Helper()
	p := pushAsync(t, dir, nil, url, "main", "-o", "param.nap=6")
	out := p.out
	deadline := time.Now().Add(90 * time.Second)
	for len(procsWith("slow_"+tok)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow node did not start; push so far:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	during()
	// The node was still asleep when during returned: the data moved
	// during the run (the push's output below says so, or the test fails).
	if len(procsWith("slow_"+tok)) == 0 {
		t.Fatalf("the slow node ended before the append landed; push so far:\n%s", out.String())
	}
	got, ok := p.wait()
	t.Logf("git push:\n%s", got)
	return got, ok
}

func TestPublishOntoMovedBranch(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	url := s.URL("moved")
	dir := newWorkRepo(t, 1)
	git(t, dir, "push", "-q", url, "main")
	cat := restCatalog(t, s, "moved")
	restAppend(t, cat, "events", true, 0, 3)
	restAppend(t, cat, "other", true, 100, 1)

	tok := fmt.Sprintf("%x", time.Now().UnixNano())
	name, src := slowSummary(tok, "first")
	commitFile(t, dir, "weir.toml", "namespace = \"main\"\n")
	commitFile(t, dir, name, src)
	if out := git(t, dir, "push", url, "main"); !strings.Contains(out, "weir: main advanced") {
		t.Fatalf("first pipeline push:\n%s", out)
	}

	// Disjoint: the run reads ext.events and writes main.summary; the REST
	// append is to ext.other.
	_, src = slowSummary(tok, "second")
	code := commitFile(t, dir, name, src)
	out, ok := pushDuringAppend(t, dir, url, tok, func() { restAppend(t, cat, "other", false, 101, 2) })
	if !ok || !strings.Contains(out, "weir: main's data moved during the run") || !strings.Contains(out, "weir: main advanced: code "+code[:7]) {
		t.Fatalf("push while ext.other was appended to:\n%s", out)
	}
	after := lsRemote(t, url)
	if after["refs/heads/main"] != code {
		t.Fatalf("refs/heads/main = %s, want %s", after["refs/heads/main"], code)
	}
	if got := query(t, s, "moved", "main", "SELECT count(*) AS n, sum(id) AS s FROM ext.other"); got != "n\ts\n3\t303\n" {
		t.Errorf("ext.other after the publish (the REST append kept): %q", got)
	}
	if got := query(t, s, "moved", "main", "SELECT n FROM main.summary"); got != "n\n3\n" {
		t.Errorf("main.summary after the publish (the run's output): %q", got)
	}
	// Lineage, as git shows it: the published commit merges the REST
	// commit and the run's own commit and sits beside the pushed code.
	git(t, dir, "fetch", "-q", url, "refs/data/main:refs/remotes/data/main")
	msg := git(t, dir, "log", "-1", "--format=%B", "refs/remotes/data/main")
	if !strings.Contains(msg, "Code-Commit: "+code) || !strings.Contains(msg, "published onto") {
		t.Errorf("published data commit:\n%s", msg)
	}
	parents := strings.Fields(git(t, dir, "log", "-1", "--format=%P", "refs/remotes/data/main"))
	if len(parents) != 2 {
		t.Fatalf("published data commit has parents %v, want the REST commit and the run's", parents)
	}
	if s1 := git(t, dir, "log", "-1", "--format=%s", parents[0]); !strings.Contains(s1, "ext.other") {
		t.Errorf("first parent is not the REST append: %q", s1)
	}
	if s2 := git(t, dir, "log", "-1", "--format=%B", parents[1]); !strings.Contains(s2, "weir: run r-") || !strings.Contains(s2, "Code-Commit: "+code) {
		t.Errorf("second parent is not the run's commit:\n%s", s2)
	}

	// Overlap: the REST append is to ext.events, which the run reads.
	_, src = slowSummary(tok, "third")
	commitFile(t, dir, name, src)
	var moved map[string]string
	out, ok = pushDuringAppend(t, dir, url, tok, func() {
		restAppend(t, cat, "events", false, 3, 1)
		moved = lsRemote(t, url)
	})
	if ok || !strings.Contains(out, "refs/data/main moved during the run: table ext.events, which the run reads, changed under it (by ") ||
		!strings.Contains(out, "push again to rerun on the new data") {
		t.Fatalf("push while ext.events was appended to:\n%s", out)
	}
	now := lsRemote(t, url)
	if now["refs/heads/main"] != code || now["refs/data/main"] != moved["refs/data/main"] || moved["refs/data/main"] == after["refs/data/main"] {
		t.Fatalf("refs moved beyond the REST append: after it %v, after the push %v", moved, now)
	}
	if got := query(t, s, "moved", "main", "SELECT count(*) AS n FROM ext.events"); got != "n\n4\n" {
		t.Errorf("ext.events after the refused push: %q", got)
	}
}
