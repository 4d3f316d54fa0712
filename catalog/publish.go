package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Published pointers (invariant 6, "honest pointers").
//
// A data tree may only recombine table pointers that were published: that
// stood on a data ref of the repo through a successful run, a REST commit,
// an import or an accepted merge. A pointer the server wrote for a failed
// run (refs/runs/<id>/data) was written by the server, but it is evidence
// to read, never something to publish.
//
// The 'w' key of a blob the server wrote records it (see the package
// comment); a second byte 'P' says it was published:
//
//	'w' <repo> 0x00 <blobhash:20>   <kind:1> ['P']
//	'w' <repo> 0x01 "published"     <version:1>   the repo's index is complete
//
// Every path that moves a data ref to a commit with new pointers marks
// them (Publish, publishDiff) just before its synced ref update, with
// NoSync: the ref update makes the marks durable too (the kv contract
// loses unsynced writes only as a suffix). A mark whose ref update then loses its compare-and-swap stays:
// such a pointer passed every check of its path and only lost a race.
//
// Repos whose data was written before the index existed are indexed once,
// on first use, from the reflogs of their data refs (backfill).

// publishedFlag is the second value byte of a published blob's 'w' key.
const publishedFlag = 'P'

// indexVersion is the value of a repo's index marker.
const indexVersion = 1

func indexKey(repo objects.RepoName) []byte {
	k := make([]byte, 0, 2+len(repo)+9)
	k = append(k, 'w')
	k = append(k, repo...)
	k = append(k, 1)
	return append(k, "published"...)
}

// Publish marks the table pointers and namespace files of the data commit
// next that base (ZeroHash: none) does not hold as published, before a
// ref update puts next on a data ref. The pipeline hook calls it for a
// successful run.
func (c *Catalog) Publish(ctx context.Context, repo objects.RepoName, base, next objects.Hash) error {
	st, err := c.state(ctx, repo, next)
	if err != nil {
		return err
	}
	var from *dataState
	if !base.IsZero() {
		if from, err = c.state(ctx, repo, base); err != nil {
			return err
		}
	}
	return c.publishDiff(repo, from, st)
}

// publishDiff marks the blobs of st that base (nil: none) does not hold.
func (c *Catalog) publishDiff(repo objects.RepoName, base, st *dataState) error {
	b := c.objs.DB().NewBatch()
	defer b.Close()
	mark := func(kind byte, h objects.Hash) error {
		return b.Set(wKey(repo, h), []byte{kind, publishedFlag})
	}
	for t, h := range st.tables {
		if base != nil && base.tables[t] == h {
			continue
		}
		if err := mark('p', h); err != nil {
			return err
		}
	}
	for ns, h := range st.namespaces {
		if base != nil && base.namespaces[ns] == h {
			continue
		}
		if err := mark('n', h); err != nil {
			return err
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(kv.NoSync); err != nil {
		return fmt.Errorf("catalog: mark published: %w", err)
	}
	return nil
}

// blobState is what the server knows of a blob in a data tree.
type blobState int

const (
	blobUnknown   blobState = iota // not written by this server: forged
	blobWritten                    // written, never published (a failed run's)
	blobPublished                  // stood on a data ref
)

func (c *Catalog) blob(repo objects.RepoName, h objects.Hash) (blobState, error) {
	v, closer, err := c.objs.DB().Get(wKey(repo, h))
	if errors.Is(err, kv.ErrNotFound) {
		return blobUnknown, nil
	}
	if err != nil {
		return blobUnknown, err
	}
	defer closer.Close()
	if len(v) > 1 && v[1] == publishedFlag {
		return blobPublished, nil
	}
	return blobWritten, nil
}

// checkPublished refuses a data tree holding a blob that was never
// published, naming the first such table (or namespace file).
func (c *Catalog) checkPublished(ctx context.Context, repo objects.RepoName, st *dataState, what string) error {
	if err := c.ensureIndex(ctx, repo); err != nil {
		return err
	}
	names := make([]TableName, 0, len(st.tables))
	for t := range st.tables {
		names = append(names, t)
	}
	sort.Slice(names, func(i, j int) bool { return names[i].String() < names[j].String() })
	for _, t := range names {
		h := st.tables[t]
		s, err := c.blob(repo, h)
		if err != nil {
			return err
		}
		switch s {
		case blobUnknown:
			return fmt.Errorf("%w: table %s in %s points at blob %s; only pointers the server wrote may be pushed (merge or revert data commits, do not edit pointers)", ErrForgedPointer, t, what, h)
		case blobWritten:
			return fmt.Errorf("%w: table %s in %s points at blob %s, which never stood on a data branch (the data of a failed run is evidence to read, not to publish); run the pipeline to make it", ErrUnpublished, t, what, h)
		}
	}
	nss := make([]string, 0, len(st.namespaces))
	for ns := range st.namespaces {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		h := st.namespaces[ns]
		s, err := c.blob(repo, h)
		if err != nil {
			return err
		}
		switch s {
		case blobUnknown:
			return fmt.Errorf("%w: namespace file namespaces/%s in %s (blob %s) was not written by this server", ErrForgedPointer, ns, what, h)
		case blobWritten:
			return fmt.Errorf("%w: namespace file namespaces/%s in %s (blob %s) never stood on a data branch", ErrUnpublished, ns, what, h)
		}
	}
	return nil
}

// ensureIndex backfills the repo's published index from the reflogs of
// its data refs, once.
func (c *Catalog) ensureIndex(ctx context.Context, repo objects.RepoName) error {
	if _, ok := c.indexed.Load(repo); ok {
		return nil
	}
	c.indexMu.Lock()
	defer c.indexMu.Unlock()
	if _, ok := c.indexed.Load(repo); ok {
		return nil
	}
	v, closer, err := c.objs.DB().Get(indexKey(repo))
	if err == nil {
		ok := len(v) == 1 && v[0] >= indexVersion
		closer.Close()
		if ok {
			c.indexed.Store(repo, struct{}{})
			return nil
		}
	} else if !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	datas, err := c.refs.List(ctx, repo, refs.DataPrefix)
	if err != nil {
		return err
	}
	for _, d := range datas {
		log, err := c.refs.Reflog(ctx, repo, d.Name)
		if err != nil {
			return err
		}
		var prev *dataState
		for _, e := range log {
			if e.New.IsZero() {
				prev = nil
				continue
			}
			st, err := c.state(ctx, repo, e.New)
			if err != nil {
				continue // an object lost to history: nothing to mark
			}
			if err := c.publishDiff(repo, prev, st); err != nil {
				return err
			}
			prev = st
		}
	}
	if err := c.objs.DB().Set(indexKey(repo), []byte{indexVersion}, kv.Sync); err != nil {
		return err
	}
	c.indexed.Store(repo, struct{}{})
	return nil
}

// PushedView reads the tables of a data commit a client pushed, which is
// still in the push's quarantine: the pipeline hook runs the branch's
// expectations on it before the ref moves.
type PushedView struct {
	c *Catalog
	q *objects.Quarantine
}

// Pushed returns a view of the data commits in q.
func (c *Catalog) Pushed(q *objects.Quarantine) *PushedView { return &PushedView{c: c, q: q} }

// Tables is Catalog.Tables for a pushed data commit.
func (v *PushedView) Tables(ctx context.Context, repo objects.RepoName, dataCommit objects.Hash) (map[TableName]Pointer, error) {
	return v.c.tablesFrom(ctx, quarantineObjects{v.q}, repo, dataCommit)
}

// ReadTableFiles is Catalog.ReadTableFiles for a pushed data commit.
func (v *PushedView) ReadTableFiles(ctx context.Context, repo objects.RepoName, dataCommit objects.Hash, t TableName) ([]string, error) {
	return v.c.readTableFilesFrom(ctx, quarantineObjects{v.q}, repo, dataCommit, t)
}
