package catalog

import (
	"context"
	"fmt"
	"strconv"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/objects"
)

// Counts from the manifests.
//
// A table pointer's rows, files and bytes, and the "append N rows" of a
// data commit's message, are counted from the files a snapshot's manifests
// list, never taken from its summary: a snapshot summary is written by the
// client, its totals are optional (a minimal client sends only
// "operation"), and nothing makes them true. For a snapshot S:
//
//	manifest list of S ──► manifests ──► live entries (status ADDED or EXISTING)
//	                                      data file:   rows += record_count, files += 1
//	                                      delete file: position or equality deletes += record_count
//	                                      any file:    bytes += file_size_in_bytes
//
// (the totals of Iceberg's own snapshot summary: total-records counts the
// records of data files, with no delete applied; total-files-size counts
// data and delete files). Manifests are immutable, so what each holds is
// cached by location, and a commit reads only the manifests it adds.
//
// Every snapshot a commit adds (REST commits and the server's own) gets
// its summary's totals and its added/deleted figures set to what its
// manifests hold: a summary that omits them gets them, one that says
// otherwise (5 rows for 3) is corrected, not refused. Readers that show
// the summary (and clients that compute the next snapshot's totals from
// this one's, as iceberg-go and PyIceberg do) then see the truth too.

// fileCounts is what a set of live manifest entries holds.
type fileCounts struct {
	rows, files           int64 // data files: their records, and how many
	deleteFiles           int64 // position and equality delete files
	posDeletes, eqDeletes int64 // records of delete files of each kind
	bytes                 int64 // file_size_in_bytes of every file, data and delete
}

func (a *fileCounts) add(b fileCounts) {
	a.rows += b.rows
	a.files += b.files
	a.deleteFiles += b.deleteFiles
	a.posDeletes += b.posDeletes
	a.eqDeletes += b.eqDeletes
	a.bytes += b.bytes
}

func (a *fileCounts) count(df iceberg.DataFile) {
	switch df.ContentType() {
	case iceberg.EntryContentData:
		a.rows += df.Count()
		a.files++
	case iceberg.EntryContentPosDeletes:
		a.deleteFiles++
		a.posDeletes += df.Count()
	case iceberg.EntryContentEqDeletes:
		a.deleteFiles++
		a.eqDeletes += df.Count()
	}
	a.bytes += df.FileSizeBytes()
}

// snapshotCounts is what one snapshot's manifests hold: every live file
// (total), and the files the snapshot itself added and deleted.
type snapshotCounts struct {
	total, added, deleted fileCounts
}

// manifestCounts returns what the live entries of manifest m hold. m must
// resolve in the area a (checked even when cached: the cache is shared by
// every repo).
func (c *Catalog) manifestCounts(a Area, fs icebergio.IO, m iceberg.ManifestFile) (fileCounts, error) {
	if _, err := a.Resolve(m.FilePath()); err != nil {
		return fileCounts{}, err
	}
	if n, ok := c.manifests.get(m.FilePath()); ok {
		return n, nil
	}
	var n fileCounts
	for e, err := range m.Entries(fs, true) {
		if err != nil {
			return fileCounts{}, err
		}
		n.count(e.DataFile())
	}
	c.manifests.put(m.FilePath(), n)
	return n, nil
}

// countSnapshot reads what snapshot s's manifests hold. The manifest list
// and every manifest must resolve in the area a.
// If seen is not nil, countSnapshot adds to it the data files named by
// each manifest S added, read once here for checkNewSnapshots too.
func (c *Catalog) countSnapshot(a Area, fs icebergio.IO, s *table.Snapshot, seen manifestFiles) (snapshotCounts, error) {
	var out snapshotCounts
	if s.ManifestList == "" {
		return out, fmt.Errorf("snapshot %d has no manifest list (format v1 embedded manifests are not supported)", s.SnapshotID)
	}
	list, err := c.readManifestList(a, fs, s.ManifestList)
	if err != nil {
		return out, fmt.Errorf("manifest list: %w", err)
	}
	for _, m := range list {
		if m.SnapshotID() != s.SnapshotID {
			// Written by an earlier snapshot: S added nothing to it.
			n, err := c.manifestCounts(a, fs, m)
			if err != nil {
				return out, fmt.Errorf("manifest: %w", err)
			}
			out.total.add(n)
			continue
		}
		if _, err := a.Resolve(m.FilePath()); err != nil {
			return out, fmt.Errorf("manifest: %w", err)
		}
		var live fileCounts
		var files []string
		for e, err := range m.Entries(fs, false) {
			if err != nil {
				return out, fmt.Errorf("manifest: %w", err)
			}
			if seen != nil {
				files = append(files, e.DataFile().FilePath())
			}
			if e.Status() != iceberg.EntryStatusDELETED {
				live.count(e.DataFile())
			}
			if e.SnapshotID() != s.SnapshotID {
				continue
			}
			switch e.Status() {
			case iceberg.EntryStatusADDED:
				out.added.count(e.DataFile())
			case iceberg.EntryStatusDELETED:
				out.deleted.count(e.DataFile())
			}
		}
		c.manifests.put(m.FilePath(), live)
		if seen != nil {
			seen[m.FilePath()] = files
		}
		out.total.add(live)
	}
	return out, nil
}

// currentCounts returns what the current snapshot of meta holds (zero
// for a table with no snapshot), cached by manifest list.
func (c *Catalog) currentCounts(ctx context.Context, a Area, meta table.Metadata) (fileCounts, error) {
	s := meta.CurrentSnapshot()
	if s == nil {
		return fileCounts{}, nil
	}
	if _, err := a.Resolve(s.ManifestList); err != nil {
		return fileCounts{}, err
	}
	if n, ok := c.snapTotals.get(s.ManifestList); ok {
		return n, nil
	}
	fs, err := a.IO(ctx)
	if err != nil {
		return fileCounts{}, err
	}
	sc, err := c.countSnapshot(a, fs, s, nil)
	if err != nil {
		return fileCounts{}, fmt.Errorf("snapshot %d: %w", s.SnapshotID, err)
	}
	c.snapTotals.put(s.ManifestList, sc.total)
	return sc.total, nil
}

// pointer builds the pointer for table t at metadata meta stored at loc,
// counting rows, files and bytes from the current snapshot's manifests.
func (c *Catalog) pointer(ctx context.Context, a Area, t TableName, meta table.Metadata, loc, run string, code objects.Hash) (Pointer, error) {
	p := pointerFor(t, meta, loc, run, code)
	n, err := c.currentCounts(ctx, a, meta)
	if err != nil {
		return Pointer{}, fmt.Errorf("table %s: count rows: %w", t, err)
	}
	p.Rows, p.Files, p.Bytes = n.rows, n.files, n.bytes
	return p, nil
}

// perSnapshotKeys are the per-snapshot summary properties trueSummaries
// sets from the manifests, left out when zero as Iceberg writers do.
var perSnapshotKeys = []string{
	"added-data-files", "added-records", "added-files-size",
	"deleted-data-files", "deleted-records", "removed-files-size",
	"added-delete-files", "removed-delete-files",
}

// trueSummaries returns updates with every add-snapshot of a snapshot
// base does not have rewritten so that its summary's totals and
// added/deleted figures are what its manifests hold. The manifest list
// and manifests must resolve in the area a (a list or manifest that does
// not, or cannot be read, is the client's error: ErrBadUpdate).
func (c *Catalog) trueSummaries(ctx context.Context, a Area, t TableName, base table.Metadata, updates []table.Update, seen manifestFiles) ([]table.Update, error) {
	var out []table.Update
	var fs icebergio.IO
	for i, u := range updates {
		var w wireUpdate
		if u.Action() != "add-snapshot" || !toWire(u, &w) || w.Snapshot == nil || w.Snapshot.Summary == nil {
			continue
		}
		s := *w.Snapshot
		if base != nil && base.SnapshotByID(s.SnapshotID) != nil {
			continue // refused later as a duplicate
		}
		if fs == nil {
			var err error
			if fs, err = a.IO(ctx); err != nil {
				return nil, err
			}
		}
		sc, err := c.countSnapshot(a, fs, &s, seen)
		if err != nil {
			return nil, fmt.Errorf("%w: table %s: snapshot %d: %w", ErrBadUpdate, t, s.SnapshotID, err)
		}
		c.snapTotals.put(s.ManifestList, sc.total)
		props := iceberg.Properties{}
		for k, v := range s.Summary.Properties {
			props[k] = v
		}
		set := func(k string, v int64) { props[k] = strconv.FormatInt(v, 10) }
		set("total-records", sc.total.rows)
		set("total-data-files", sc.total.files)
		set("total-files-size", sc.total.bytes)
		set("total-delete-files", sc.total.deleteFiles)
		set("total-position-deletes", sc.total.posDeletes)
		set("total-equality-deletes", sc.total.eqDeletes)
		per := map[string]int64{
			"added-data-files": sc.added.files, "added-records": sc.added.rows, "added-files-size": sc.added.bytes,
			"deleted-data-files": sc.deleted.files, "deleted-records": sc.deleted.rows, "removed-files-size": sc.deleted.bytes,
			"added-delete-files": sc.added.deleteFiles, "removed-delete-files": sc.deleted.deleteFiles,
		}
		for _, k := range perSnapshotKeys {
			if per[k] > 0 {
				set(k, per[k])
			} else {
				delete(props, k)
			}
		}
		s.Summary = &table.Summary{Operation: s.Summary.Operation, Properties: props}
		if out == nil {
			out = append([]table.Update(nil), updates...)
		}
		out[i] = table.NewAddSnapshotUpdate(&s)
	}
	if out == nil {
		return updates, nil
	}
	return out, nil
}

// manifestFiles holds, for manifests read while one write is staged, the
// data file locations each names: staging reads a new snapshot's own
// manifests once, to count them (countSnapshot) and to check where their
// files are (checkNewSnapshots).
type manifestFiles map[string][]string
