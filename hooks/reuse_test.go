package hooks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/refs"
)

func TestPipelineReusesUnchangedSeeds(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	orders := catalog.TableName{Namespace: "raw", Name: "orders"}
	revenue := "SELECT string_agg(customer || '=' || total, ',' ORDER BY customer) FROM clean.revenue"
	pushOK := func(opts ...string) string {
		t.Helper()
		res, prog := w.push(t, "main", opts...)
		if len(res.Refused) > 0 {
			t.Fatalf("refused: %v\n%s", res.Refused, prog)
		}
		return prog
	}
	seedRan := func(prog string) bool {
		for _, l := range strings.Split(prog, "\n") {
			if strings.Contains(l, "raw.orders") && strings.Contains(l, "seed") {
				return !strings.Contains(l, "unchanged since r-")
			}
		}
		t.Fatalf("no progress line for the seed:\n%s", prog)
		return false
	}
	pointer := func() catalog.Pointer {
		t.Helper()
		tabs, err := w.cat.Tables(ctx, repo, w.ref(t, "refs/data/main"))
		if err != nil {
			t.Fatal(err)
		}
		return tabs[orders]
	}

	w.commit(t, example)
	if prog := pushOK(); !seedRan(prog) {
		t.Fatalf("first push did not run the seed:\n%s", prog)
	}
	first := pointer()

	// Same CSV, same weir.toml: the seed is not run, its table stays the
	// one the first run made, and everything downstream runs on it.
	w.commit(t, map[string]string{"models/orders.sql": "SELECT id, customer, amount FROM raw.orders WHERE amount > 1"})
	prog := pushOK()
	if seedRan(prog) || !strings.Contains(prog, "unchanged since "+first.Run) {
		t.Fatalf("unchanged seed ran again:\n%s", prog)
	}
	if p := pointer(); p != first {
		t.Fatalf("reused seed's pointer changed: %+v -> %+v", first, p)
	}
	if got := w.query(t, w.ref(t, "refs/data/main"), revenue); got != "ann=15,cy=7" {
		t.Fatalf("revenue on the reused seed %q", got)
	}

	// -o rerun runs it anyway.
	w.commit(t, map[string]string{"README": "x"})
	if prog := pushOK("rerun"); !seedRan(prog) {
		t.Fatalf("-o rerun did not run the seed:\n%s", prog)
	}

	// A table last written by anything but a pipeline run (here a catalog
	// write naming the branch's code commit, as the REST catalog's do) is
	// made again by the seed.
	data := w.ref(t, "refs/data/main")
	files, err := w.cat.ReadTableFiles(ctx, repo, data, orders)
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.cat.WriteDataCommit(ctx, repo, data, []catalog.TableWrite{{Table: orders, Files: files[:1]}}, catalog.CommitInfo{RunID: "iceberg-test", CodeCommit: w.ref(t, "refs/heads/main")})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.refs.Update(ctx, repo, []refs.Update{{Name: "refs/data/main", Old: data, New: other}}, nil, "test"); err != nil {
		t.Fatal(err)
	}
	w.commit(t, map[string]string{"README": "y"})
	if prog := pushOK(); !seedRan(prog) {
		t.Fatalf("seed not run over a table the catalog wrote:\n%s", prog)
	}

	// A changed CSV runs the seed, and the data follows it.
	w.commit(t, map[string]string{"seeds/raw/orders.csv": "id,customer,amount\n1,ann,10\n4,cy,7\n5,dee,2\n"})
	if prog := pushOK(); !seedRan(prog) {
		t.Fatalf("changed seed not run:\n%s", prog)
	}
	if got := w.query(t, w.ref(t, "refs/data/main"), revenue); got != "ann=10,cy=7,dee=2" {
		t.Fatalf("revenue after the seed changed %q", got)
	}

	// A changed weir.toml runs it too.
	w.commit(t, map[string]string{"weir.toml": "namespace = \"clean\"\n# comment\n"})
	if prog := pushOK(); !seedRan(prog) {
		t.Fatalf("seed not run after weir.toml changed:\n%s", prog)
	}
}
