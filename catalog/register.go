package catalog

import (
	"context"
	"fmt"
	"path"

	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/weir-dev/weir/objects"
)

// RegisterTable makes ident the table whose metadata file is at
// metadataLocation, a file already in the repo's part of the warehouse
// (the REST spec's register table): one data commit on the branch, like
// any catalog write. The location must resolve in the repo's Area
// (invariant 9), and so must every file the metadata names: the table's
// location, write paths and statistics, every snapshot's manifest list,
// the manifests those name and the data files they add (the checks of a
// REST commit, every snapshot being new here). The pointer's counts come
// from the current snapshot's manifests. A metadata file whose name is
// not the server's <version>-<uuid>.metadata.json (a Hadoop table's
// v3.metadata.json, say) is written again under such a name, so that the
// table's next commit can follow it; the registered file is left as is.
// An existing table is replaced only with overwrite (else
// ErrTableAlreadyExists); the namespace must exist.
func (ic *IcebergCatalog) RegisterTable(ctx context.Context, ident table.Identifier, metadataLocation string, overwrite bool) (*table.Table, error) {
	t, err := tableName(ident)
	if err != nil {
		return nil, err
	}
	if ic.ReadOnly() {
		return nil, fmt.Errorf("%w: %q of %s; register on a branch", ErrReadOnly, ic.rev, ic.repo)
	}
	rel, err := ic.area.Resolve(metadataLocation)
	if err != nil {
		return nil, fmt.Errorf("register table %s: metadata-location: %w (register a metadata file in the repo's own folder of the warehouse)", t, err)
	}
	meta, err := ic.c.readMetadata(ctx, ic.area, metadataLocation)
	if err != nil {
		return nil, fmt.Errorf("%w: register table %s: cannot read metadata file %s: %v", ErrBadUpdate, t, rel, err)
	}
	if err := checkReferences(ic.area, nil, meta); err != nil {
		return nil, fmt.Errorf("%w: register table %s: %w", ErrBadUpdate, t, err)
	}
	if err := ic.c.checkNewSnapshots(ctx, ic.area, t, nil, meta, nil); err != nil {
		return nil, err
	}
	loc := metadataLocation
	if !metadataVersionRE.MatchString(path.Base(loc)) {
		loc = fmt.Sprintf("%s/metadata/00000-%s.metadata.json", meta.Location(), uuid.NewString())
		if err := ic.c.writeMetadata(ctx, ic.area, loc, meta); err != nil {
			return nil, err
		}
		ic.c.metas.put(loc, meta)
	}
	p, err := ic.c.pointer(ctx, ic.area, t, meta, loc, "", objects.ZeroHash)
	if err != nil {
		return nil, fmt.Errorf("%w: register table %s: %w", ErrBadUpdate, t, err)
	}
	_, err = ic.advance(ctx, func(st *dataState, _ int) (string, []string, error) {
		if _, ok := st.namespaces[t.Namespace]; !ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, t.Namespace)
		}
		if _, ok := st.tables[t]; ok && !overwrite {
			return "", nil, fmt.Errorf("%w: %s (register with overwrite to replace it)", icebergcat.ErrTableAlreadyExists, t)
		}
		h, err := ic.c.putPointer(ctx, ic.repo, p)
		if err != nil {
			return "", nil, err
		}
		st.tables[t] = h
		line := fmt.Sprintf("register table %s from %s: %d rows", t, rel, p.Rows)
		return "weir: " + line, []string{line}, nil
	})
	if err != nil {
		return nil, err
	}
	return table.New(ident, meta, loc, ic.c.fsFunc(ic.area), ic), nil
}
