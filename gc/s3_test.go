package gc

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/objects"
)

// On S3 (gofakes3, in process) a collection deletes the failed run's
// keys, keeps every key a kept pointer names, and touches no key outside
// the repo's prefix.
func TestCollectOnS3(t *testing.T) {
	ctx := context.Background()
	backend := s3mem.New()
	if err := backend.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	wh, err := catalog.NewS3Warehouse(catalog.S3Config{
		Bucket: "lake", Prefix: "weir", Endpoint: srv.URL, Region: "us-east-1", PathStyle: true,
		AccessKeyID: "test", SecretAccessKey: "test", CacheDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := func() []string {
		var out []string
		pg := s3.NewListObjectsV2Paginator(wh.Client(), &s3.ListObjectsV2Input{Bucket: aws.String("lake")})
		for pg.HasMorePages() {
			p, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Contents {
				out = append(out, aws.ToString(o.Key))
			}
		}
		slices.Sort(out)
		return out
	}
	// Keys of another repo, and one next to the repo's prefix.
	for _, k := range []string{"weir/other@repo/sales/orders/data/x.parquet", "weir/team@demo2/x.parquet", "elsewhere/x"} {
		if _, err := wh.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixtureOn(t, memkv.New(), t.TempDir(), wh)
	code := f.codeCommit(t, "select 1", objects.ZeroHash)
	f.move(t, "refs/heads/main", objects.ZeroHash, code)
	d1 := f.dataCommit(t, objects.ZeroHash, 0, 10, catalog.ModeReplace, "r-1")
	f.move(t, catalog.DataRef("main"), objects.ZeroHash, d1)
	before := keys()
	runData := f.dataCommit(t, d1, 50, 5, catalog.ModeAppend, "r-0bad")
	f.failedRun(t, "r-0bad", code, runData)
	withRun := keys()
	var runKeys []string
	for _, k := range withRun {
		if !slices.Contains(before, k) {
			runKeys = append(runKeys, k)
		}
	}
	if len(runKeys) < 3 {
		t.Fatalf("the run wrote %v", runKeys)
	}
	res, err := f.collector(2*time.Hour).Run(ctx, expiring())
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("collection: %v %v", err, res.Errors)
	}
	if after := keys(); !slices.Equal(after, before) {
		t.Fatalf("keys after the collection:\n%v\nwant (as before the run):\n%v", after, before)
	}
	if res.Files != len(runKeys) {
		t.Errorf("freed %d files, the run wrote %d", res.Files, len(runKeys))
	}
	if got := f.ids(t, f.head(t, "main")); !slices.Equal(got, seq(0, 10)) {
		t.Errorf("main reads %v", got)
	}
}
