package catalog

import (
	"context"
	"testing"

	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/catalogtest"
)

// TestIcebergConformance runs iceberg-go's conformance suite against the
// in-process IcebergCatalog (catalog/rest runs it again over HTTP).
func TestIcebergConformance(t *testing.T) {
	catalogtest.RunCatalogTests(t, catalogtest.Config{
		SupportsNamespaceProperties: true,
		NewCatalog: func(t *testing.T) icebergcat.Catalog {
			f := newFixture(t, nil)
			ic, err := f.cat.Iceberg(context.Background(), f.repo, "main", "test")
			if err != nil {
				t.Fatal(err)
			}
			return ic
		},
	})
}
