package rest_test

import (
	"context"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/weir-dev/weir/catalog"
)

// TestS3EndToEnd runs the whole path against a real S3-compatible server
// (gofakes3, in process, on loopback): Go API writes upload Parquet and
// metadata to the bucket, ReadTableFiles downloads them, and iceberg-go's
// REST client appends and scans through its own S3 FileIO.
func TestS3EndToEnd(t *testing.T) {
	ctx := context.Background()
	backend := s3mem.New()
	if err := backend.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3srv.Close)
	wh, err := catalog.NewS3Warehouse(catalog.S3Config{
		Bucket: "lake", Prefix: "weir", Endpoint: s3srv.URL, Region: "us-east-1", PathStyle: true,
		AccessKeyID: "test", SecretAccessKey: "test", CacheDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, wh)

	// Go API: a node's Parquet output becomes a table in the bucket.
	orders := catalog.TableName{Namespace: "sales", Name: "orders"}
	pq := writeParquetFile(t, 0, 4)
	h, err := s.cat.WriteBranch(ctx, repo, "main", []catalog.TableWrite{{Table: orders, Files: []string{pq}}}, catalog.CommitInfo{RunID: "r-s3"})
	if err != nil {
		t.Fatal(err)
	}
	tabs, _ := s.cat.Tables(ctx, repo, h)
	if p := tabs[orders]; p.Rows != 4 || !strings.HasPrefix(p.MetadataLocation, "s3://lake/weir/team@demo/sales/orders/metadata/") {
		t.Fatalf("pointer %+v", p)
	}
	list, err := wh.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lake"), Prefix: aws.String("weir/team@demo/sales/orders/data/")})
	if err != nil || len(list.Contents) != 1 {
		t.Fatalf("data files in bucket: %v, %v", list, err)
	}
	files, err := s.cat.ReadTableFiles(ctx, repo, h, orders)
	if err != nil || len(files) != 1 {
		t.Fatalf("ReadTableFiles = %v, %v", files, err)
	}
	if ids := readIDs(t, files[0]); !slices.Equal(ids, seq(0, 4)) {
		t.Fatalf("downloaded ids %v", ids)
	}
	// As readable as a local warehouse's file: pipelines hard-link it into
	// the input folder of a node that runs as an unprivileged user.
	if st, err := os.Stat(files[0]); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("cached download: %v, %v (want mode 0644)", st.Mode(), err)
	}

	// REST: iceberg-go appends with its own S3 FileIO: where the bucket is
	// comes from the server's config, the keys are the client's own (the
	// server vends none by default).
	cat := s.client(t, "main", iceberg.Properties{icebergio.S3AccessKeyID: "test", icebergio.S3SecretAccessKey: "test"})
	tbl, err := cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	at := arrowTable(10, 3)
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, 100, nil); err != nil {
		t.Fatal(err)
	}
	tbl, _ = cat.LoadTable(ctx, table.Identifier{"sales", "orders"})
	if got := scanIDs(t, tbl); !slices.Equal(got, append(seq(0, 4), seq(10, 3)...)) {
		t.Fatalf("scan over S3 = %v", got)
	}
	files, err = s.cat.ReadTableFiles(ctx, repo, s.head(t, "main"), orders)
	if err != nil || len(files) != 2 {
		t.Fatalf("ReadTableFiles after REST append = %v, %v", files, err)
	}
}

func writeParquetFile(t *testing.T, from, n int) string {
	t.Helper()
	at := arrowTable(from, n)
	defer at.Release()
	p := t.TempDir() + "/out.parquet"
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := pqarrow.WriteTable(at, f, 1024, nil, pqarrow.DefaultWriterProps()); err != nil {
		t.Fatal(err)
	}
	return p
}

func readIDs(t *testing.T, p string) []int64 {
	t.Helper()
	rdr, err := file.OpenParquetFile(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Release()
	var ids []int64
	for _, ch := range tb.Column(0).Data().Chunks() {
		ids = append(ids, ch.(*array.Int64).Int64Values()...)
	}
	slices.Sort(ids)
	return ids
}
