package catalog

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

func appendRows(t *testing.T, tbl *table.Table, from, n int) (*table.Table, error) {
	t.Helper()
	rec := testRecord(from, n)
	defer rec.Release()
	at := array.NewTableFromRecords(testSchema, []arrow.RecordBatch{rec})
	defer at.Release()
	return tbl.AppendTable(context.Background(), at, 100, nil)
}

func newIcebergTable(t *testing.T) (*fixture, *IcebergCatalog, table.Identifier) {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, nil)
	ic, err := f.cat.Iceberg(ctx, f.repo, "main", "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.CreateNamespace(ctx, table.Identifier{"sales"}, nil); err != nil {
		t.Fatal(err)
	}
	ident := table.Identifier{"sales", "orders"}
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 3, Name: "amount", Type: iceberg.PrimitiveTypes.Float64, Required: true},
	)
	// No client-side retries: what lands, the server landed.
	if _, err := ic.CreateTable(ctx, ident, schema, icebergcat.WithProperties(iceberg.Properties{table.CommitNumRetriesKey: "0"})); err != nil {
		t.Fatal(err)
	}
	return f, ic, ident
}

func rowCount(t *testing.T, tbl *table.Table) int64 {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	return at.NumRows()
}

// checkLinear checks that the main branch's snapshots form one chain with
// strictly increasing sequence numbers and totals that add up.
func checkLinear(t *testing.T, tbl *table.Table, wantSnapshots int, wantRows int64) {
	t.Helper()
	meta := tbl.Metadata()
	n := 0
	var prevSeq int64 = 1 << 62
	for s := meta.CurrentSnapshot(); s != nil; n++ {
		if s.SequenceNumber >= prevSeq {
			t.Fatalf("snapshot %d: sequence %d not below its child's %d", s.SnapshotID, s.SequenceNumber, prevSeq)
		}
		prevSeq = s.SequenceNumber
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	if n+1 != wantSnapshots {
		t.Fatalf("chain of %d snapshots, want %d", n+1, wantSnapshots)
	}
	total, _ := strconv.ParseInt(meta.CurrentSnapshot().Summary.Properties["total-records"], 10, 64)
	if total != wantRows {
		t.Fatalf("total-records = %d, want %d", total, wantRows)
	}
	if got := rowCount(t, tbl); got != wantRows {
		t.Fatalf("scan: %d rows, want %d", got, wantRows)
	}
}

func TestStaleAppendIsRebased(t *testing.T) {
	ctx := context.Background()
	f, ic, ident := newIcebergTable(t)
	a, err := ic.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if a, err = appendRows(t, a, 0, 5); err != nil {
		t.Fatal(err)
	}
	// b and c both start from the table with 5 rows.
	b, _ := ic.LoadTable(ctx, ident)
	c, _ := ic.LoadTable(ctx, ident)
	if _, err := appendRows(t, b, 100, 10); err != nil {
		t.Fatal(err)
	}
	before := f.cat.Rebases()
	got, err := appendRows(t, c, 200, 20)
	if err != nil {
		t.Fatalf("stale append: %v (want it applied on top of the newer snapshot)", err)
	}
	if f.cat.Rebases() != before+1 {
		t.Fatalf("rebases %d -> %d, want one", before, f.cat.Rebases())
	}
	checkLinear(t, got, 3, 35)
	fresh, _ := ic.LoadTable(ctx, ident)
	checkLinear(t, fresh, 3, 35)
}

func TestStaleNonAppendIsRefused(t *testing.T) {
	ctx := context.Background()
	f, ic, ident := newIcebergTable(t)
	a, _ := ic.LoadTable(ctx, ident)
	a, err := appendRows(t, a, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	stale := a.Metadata().CurrentSnapshot().SnapshotID
	if _, err := appendRows(t, a, 10, 5); err != nil {
		t.Fatal(err)
	}
	head := f.head(t, "main")
	// A property change that insists on the old snapshot is not an append:
	// the moved branch fails it, and nothing is written.
	_, _, err = ic.CommitTable(ctx, ident,
		[]table.Requirement{table.AssertRefSnapshotID("main", &stale)},
		[]table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{"owner": "x"})})
	if !errors.Is(err, table.ErrCommitFailed) {
		t.Fatalf("stale property update: %v, want ErrCommitFailed", err)
	}
	if f.head(t, "main") != head {
		t.Fatal("refused commit moved the branch")
	}
}

func TestConcurrentAppendsOneTableBatched(t *testing.T) {
	ctx := context.Background()
	f, ic, ident := newIcebergTable(t)
	const writers, each = 16, 3
	base, _ := ic.LoadTable(ctx, ident)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tbl := base // every writer starts from the empty table
			for i := range each {
				next, err := appendRows(t, tbl, (w*each+i)*10, 10)
				if err != nil {
					errs <- err
					continue
				}
				tbl = next
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	fresh, _ := ic.LoadTable(ctx, ident)
	checkLinear(t, fresh, writers*each, writers*each*10)
	// Every data commit on the branch names its changes.
	msg := f.commitMessage(t, f.head(t, "main"))
	if msg == "" {
		t.Fatal("empty data commit message")
	}
}
