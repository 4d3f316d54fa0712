package catalog

import (
	"context"
	"fmt"

	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// StageCreateTable is the first half of a staged create (the Iceberg REST
// "stage-create": true): it checks that ident could be created now and
// returns the metadata the new table would start from, and it writes
// nothing: no metadata file, no pointer, no data commit. The table comes
// into being only when a commit whose requirements include assert-create
// carries the creating updates (CommitTable or CommitTransaction); until
// then it is invisible, and a staged create that is never committed
// leaves no trace.
//
// It fails as CreateTable does: ErrReadOnly on a tag or a commit,
// ErrNoSuchNamespace, ErrTableAlreadyExists, ErrBadName, and ErrBadUpdate
// for a missing schema or a location outside this repo's warehouse.
func (ic *IcebergCatalog) StageCreateTable(ctx context.Context, ident table.Identifier, schema *iceberg.Schema, opts ...icebergcat.CreateTableOpt) (table.Metadata, error) {
	t, cfg, loc, err := ic.createArgs(ident, schema, opts)
	if err != nil {
		return nil, err
	}
	st, err := ic.current(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := st.namespaces[t.Namespace]; !ok {
		return nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, t.Namespace)
	}
	if _, ok := st.tables[t]; ok {
		return nil, fmt.Errorf("%w: %s", icebergcat.ErrTableAlreadyExists, t)
	}
	meta, err := table.NewMetadata(schema, cfg.PartitionSpec, cfg.SortOrder, loc, cfg.Properties)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadUpdate, err)
	}
	return meta, nil
}
