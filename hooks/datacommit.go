package hooks

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/objects"
)

// The run's data commit: each table a node made is snapshotted (staged)
// in the background as soon as its node has finished; writeData ties the
// snapshots into one commit on top of the start data once every node has
// passed (or, for a failed run, the partial data kept as evidence).

// stager is a Catalog that can snapshot a table as soon as the node that
// made it has finished, and tie the snapshots into one data commit at the
// end (*catalog.Catalog): the Iceberg work of a table then overlaps the
// nodes that run after its node, and only the commit itself is left when
// the last node finishes.
type stager interface {
	StageTable(ctx context.Context, repo objects.RepoName, base objects.Hash, w catalog.TableWrite, info catalog.CommitInfo) (*catalog.StagedTable, error)
	CommitStaged(ctx context.Context, repo objects.RepoName, base objects.Hash, staged []*catalog.StagedTable, info catalog.CommitInfo) (objects.Hash, error)
}

// stageTables starts snapshotting ws in the background, with a Catalog
// that can (stager); writeData waits for them.
func (r *run) stageTables(ctx context.Context, ws []catalog.TableWrite) {
	s, ok := r.h.cfg.Catalog.(stager)
	if !ok {
		return
	}
	for _, w := range ws {
		r.staging.Add(1)
		go func() {
			defer r.staging.Done()
			st, err := s.StageTable(ctx, r.push.Repo, r.start, w, r.commitInfo())
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				r.stageErr = errors.Join(r.stageErr, err)
				return
			}
			r.staged = append(r.staged, st)
		}()
	}
}

// writeData makes the data commit of every output written so far on top
// of the start data: from the tables staged while the nodes ran when all
// of them were, else with WriteDataCommit.
func (r *run) writeData(ctx context.Context, info catalog.CommitInfo) (objects.Hash, error) {
	r.staging.Wait()
	ws := r.sortedWrites()
	r.mu.Lock()
	staged, stageErr := append([]*catalog.StagedTable(nil), r.staged...), r.stageErr
	r.mu.Unlock()
	if s, ok := r.h.cfg.Catalog.(stager); ok && len(staged) == len(ws) {
		return s.CommitStaged(ctx, r.push.Repo, r.start, staged, info)
	}
	if stageErr != nil {
		return objects.ZeroHash, stageErr
	}
	return r.h.cfg.Catalog.WriteDataCommit(ctx, r.push.Repo, r.start, ws, info)
}

func (r *run) commitInfo() catalog.CommitInfo {
	return catalog.CommitInfo{
		RunID:      string(r.id),
		CodeCommit: r.code,
		Message:    fmt.Sprintf("weir: run %s on %s at %s", r.id, r.branch, short(r.code)),
	}
}

func (r *run) sortedWrites() []catalog.TableWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := append([]catalog.TableWrite(nil), r.writes...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Table.String() < ws[j].Table.String() })
	return ws
}
