package catalog

import (
	"context"
	"strings"
	"time"

	"github.com/weir-dev/weir/objects"
)

// TableVersion is one change of a table on a line of data commits: the
// commit whose tree changed the table's pointer, and what it set.
type TableVersion struct {
	Commit  objects.Hash
	Subject string    // the commit's subject line
	When    time.Time // its committer time
	// Pointer is the pointer the commit set: its Run and CodeCommit are
	// the lineage (which run and code wrote this version). Dropped: the
	// commit removed the table (Pointer is zero).
	Pointer Pointer
	Dropped bool
}

// TableHistory walks the first-parent line of data commits from from
// (newest first) and returns the commits on it that changed t's pointer,
// each with the pointer it set. It reads at most walk commits and
// returns at most max versions; next is where to go on from (the first
// commit not read), ZeroHash when the line's root was reached. The first
// commit of the line that has the table counts as a change (it created
// the table there). It reads objects only.
func (c *Catalog) TableHistory(ctx context.Context, repo objects.RepoName, from objects.Hash, t TableName, walk, max int) (versions []TableVersion, next objects.Hash, err error) {
	r := repoObjects{c.objs, repo}
	cur := from
	var st *dataState
	if !cur.IsZero() {
		if st, err = readState(ctx, r, cur); err != nil {
			return nil, objects.ZeroHash, err
		}
	}
	for n := 0; !cur.IsZero() && n < walk && len(versions) < max; n++ {
		if err := ctx.Err(); err != nil {
			return nil, objects.ZeroHash, err
		}
		cm, err := readCommit(ctx, r, cur)
		if err != nil {
			return nil, objects.ZeroHash, err
		}
		var parent objects.Hash
		if len(cm.ParentHashes) > 0 {
			parent = cm.ParentHashes[0]
		}
		ps, err := readState(ctx, r, parent)
		if err != nil {
			return nil, objects.ZeroHash, err
		}
		if blob, ok := st.tables[t]; blob != ps.tables[t] {
			subject, _, _ := strings.Cut(cm.Message, "\n")
			v := TableVersion{Commit: cur, Subject: subject, When: cm.Committer.When.UTC(), Dropped: !ok}
			if ok {
				if v.Pointer, err = readPointerFrom(ctx, r, blob); err != nil {
					return nil, objects.ZeroHash, err
				}
			}
			versions = append(versions, v)
		}
		cur, st = parent, ps
	}
	return versions, cur, nil
}
