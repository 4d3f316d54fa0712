package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/catalogtest"
)

// TestIcebergConformanceS3Names runs iceberg-go's conformance suite
// against a local warehouse whose tables get s3://weir/ locations.
func TestIcebergConformanceS3Names(t *testing.T) {
	catalogtest.RunCatalogTests(t, catalogtest.Config{
		SupportsNamespaceProperties: true,
		NewCatalog: func(t *testing.T) icebergcat.Catalog {
			wh, err := NewLocalWarehouse(filepath.Join(t.TempDir(), "warehouse"), WithS3Names())
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, wh)
			ic, err := f.cat.Iceberg(context.Background(), f.repo, "main", "test")
			if err != nil {
				t.Fatal(err)
			}
			return ic
		},
	})
}

// TestLocalWarehouseBothNames: a table created with file:// locations
// keeps working once the warehouse names new tables s3://weir/, and both
// tables' files are in the same folder.
func TestLocalWarehouseBothNames(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "warehouse")
	plain, err := NewLocalWarehouse(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, plain)
	old, fresh := TableName{"sales", "old"}, TableName{"sales", "fresh"}
	if _, err := f.cat.WriteBranch(ctx, f.repo, "main", []TableWrite{{Table: old, Files: []string{f.parquetFile(t, 1, 2)}, Mode: ModeAppend}}, CommitInfo{RunID: "r1"}); err != nil {
		t.Fatal(err)
	}
	named, err := NewLocalWarehouse(dir, WithS3Names())
	if err != nil {
		t.Fatal(err)
	}
	if named.Root() != "s3://weir" || plain.Root() != "file://"+filepath.ToSlash(dir) {
		t.Fatalf("roots %s, %s", named.Root(), plain.Root())
	}
	f.cat = New(f.objs, f.refs, named)
	h, err := f.cat.WriteBranch(ctx, f.repo, "main", []TableWrite{
		{Table: old, Files: []string{f.parquetFile(t, 3, 1)}, Mode: ModeAppend},
		{Table: fresh, Files: []string{f.parquetFile(t, 10, 2)}, Mode: ModeAppend},
	}, CommitInfo{RunID: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	tabs, err := f.cat.Tables(ctx, f.repo, h)
	if err != nil {
		t.Fatal(err)
	}
	if loc := tabs[old].MetadataLocation; !strings.HasPrefix(loc, "file://"+filepath.ToSlash(dir)+"/team@demo/sales/old/") {
		t.Errorf("the old table moved: %s", loc)
	}
	if loc := tabs[fresh].MetadataLocation; !strings.HasPrefix(loc, "s3://weir/team@demo/sales/fresh/metadata/") {
		t.Errorf("the new table is not named s3://weir/: %s", loc)
	}
	for tn, want := range map[TableName][]int64{old: {1, 2, 3}, fresh: {10, 11}} {
		files, err := f.cat.ReadTableFiles(ctx, f.repo, h, tn)
		if err != nil {
			t.Fatal(err)
		}
		ids := parquetIDs(t, files)
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Errorf("%s: ids %v, want %v", tn, ids, want)
		}
		for _, p := range files {
			if !strings.HasPrefix(p, dir+"/team@demo/") {
				t.Errorf("%s: file %s is not in the repo's folder", tn, p)
			}
		}
	}
}

// TestBucketKeys: the S3 endpoint's keys go through the canonicaliser.
func TestBucketKeys(t *testing.T) {
	wh, err := NewLocalWarehouse(filepath.Join(t.TempDir(), "warehouse"), WithS3Names())
	if err != nil {
		t.Fatal(err)
	}
	a, rel, err := wh.Bucket("team@demo/sales/orders/data/x.parquet")
	if err != nil || a.Seg() != "team@demo" || rel != "sales/orders/data/x.parquet" {
		t.Fatalf("Bucket = %v %q %v", a, rel, err)
	}
	for key, want := range map[string]error{
		"team@demo":                              ErrOutsideRepo,
		"team@demo/":                             ErrBadLocation,
		"..":                                     ErrBadLocation,
		"../etc/passwd":                          ErrBadLocation,
		"team@demo/../other/x":                   ErrBadLocation,
		"team@demo//x":                           ErrBadLocation,
		"team@demo/a%2e%2e/x":                    ErrBadLocation,
		"team@demo/a\x00b":                       ErrBadLocation,
		"team@demo/" + strings.Repeat("a", 5000): ErrBadLocation,
	} {
		if _, _, err := wh.Bucket(key); !errors.Is(err, want) {
			t.Errorf("Bucket(%q) = %v, want %v", key, err, want)
		}
	}
}
