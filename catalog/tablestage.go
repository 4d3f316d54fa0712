package catalog

import (
	"context"
	"fmt"
	"sort"

	"github.com/weir-dev/weir/objects"
)

// Staged table writes: WriteDataCommit in two steps, so that a pipeline
// can snapshot each table as soon as the node that made it has finished,
// while later nodes run, and only tie the snapshots together at the end:
//
//	StageTable(base, w1) ─┐   (any order, concurrently for distinct tables)
//	StageTable(base, w2) ─┼─► CommitStaged(base, [s1 s2 s3]) ─► data commit
//	StageTable(base, w3) ─┘
//
// StageTable does all of one table's work: the data files into the
// warehouse, manifests, the metadata file, the pointer blob. CommitStaged
// syncs the warehouse once and writes the tree and the commit. Nothing
// names a staged table until a ref names that commit, so a run that fails
// half-way publishes nothing (invariant 2); what it staged is unreferenced
// garbage in the warehouse, as are the files of any failed run.

// StagedTable is one table's new snapshot, written but in no commit yet.
type StagedTable struct {
	table   TableName
	pointer objects.Hash
	change  string // "replace main.x: 34 rows (was 30)", for the commit message
}

// Table is the table the snapshot is of.
func (s *StagedTable) Table() TableName { return s.table }

// StageTable writes w as a new snapshot of w.Table on top of the table as
// it is in the data commit base (ZeroHash: the empty data commit), exactly
// as WriteDataCommit would, and returns it for CommitStaged. It moves no
// ref and makes no commit. Calls for distinct tables may run concurrently.
func (c *Catalog) StageTable(ctx context.Context, repo objects.RepoName, base objects.Hash, w TableWrite, info CommitInfo) (*StagedTable, error) {
	if err := w.Table.Validate(); err != nil {
		return nil, err
	}
	st, err := c.state(ctx, repo, base)
	if err != nil {
		return nil, err
	}
	ch, err := c.writeTable(ctx, repo, st, w, info)
	if err != nil {
		return nil, fmt.Errorf("write table %s: %w", w.Table, err)
	}
	return &StagedTable{table: w.Table, pointer: st.tables[w.Table], change: ch}, nil
}

// CommitStaged returns a new data commit whose parent is base and whose
// tables are base's with each staged table's snapshot in place of the
// table's (each staged on this base, one per table). Like WriteDataCommit
// it makes the warehouse durable first and moves no ref.
func (c *Catalog) CommitStaged(ctx context.Context, repo objects.RepoName, base objects.Hash, staged []*StagedTable, info CommitInfo) (objects.Hash, error) {
	st, err := c.state(ctx, repo, base)
	if err != nil {
		return objects.ZeroHash, err
	}
	staged = append([]*StagedTable(nil), staged...)
	sort.Slice(staged, func(i, j int) bool { return staged[i].table.String() < staged[j].table.String() })
	var changes []string
	for i, s := range staged {
		if i > 0 && staged[i-1].table == s.table {
			return objects.ZeroHash, fmt.Errorf("%w: table %s written twice in one commit", ErrBadWrite, s.table)
		}
		st.tables[s.table] = s.pointer
		if err := c.ensureNamespace(ctx, repo, st, s.table.Namespace); err != nil {
			return objects.ZeroHash, err
		}
		changes = append(changes, s.change)
	}
	if err := c.syncWarehouse(ctx); err != nil {
		return objects.ZeroHash, err
	}
	if !info.CodeCommit.IsZero() {
		st.code = info.CodeCommit
	}
	msg := info.Message
	if msg == "" {
		if len(changes) == 1 {
			msg = "weir: " + changes[0]
		} else {
			msg = fmt.Sprintf("weir: write %d tables", len(changes))
		}
	}
	return c.commitState(ctx, repo, st, []objects.Hash{base}, msg, info.RunID, info.CodeCommit, changes)
}
