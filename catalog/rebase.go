package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
)

// Server-side rebase of appends.
//
// An Iceberg append commits with the requirement "branch main is still at
// snapshot P". When another writer appended to the same table first, the
// requirement fails and the client has to reload, rewrite its manifest list
// and retry: with many writers on one table most of that work is wasted and
// throughput collapses. An append commutes with any other change, so the
// server does the client's retry itself, under the branch's commit lock:
// the appended snapshot S (parent P) is re-parented onto the current
// snapshot C with a new manifest list (S's own new manifests followed by
// C's), the next sequence number and recomputed totals. This is exactly
// what iceberg-go's and Java's fast-append retry produce.
//
// Only a plain fast append is rebased: the updates are add-snapshot of an
// "append" snapshot plus set-snapshot-ref of a branch to it; the only
// failing requirement is that branch's assert-ref-snapshot-id, naming S's
// parent; P is an ancestor of C; S's manifest list is P's manifests plus
// manifests S wrote holding only added data files (so no merged or
// rewritten manifest whose entries would be counted twice); the table is
// format v2. Anything else fails with CommitFailed as before.

// wireUpdate is the JSON form of the two updates a fast append sends.
type wireUpdate struct {
	Action     string          `json:"action"`
	Snapshot   *table.Snapshot `json:"snapshot"`
	RefName    string          `json:"ref-name"`
	Type       table.RefType   `json:"type"`
	SnapshotID int64           `json:"snapshot-id"`
}

type wireRequirement struct {
	Type       string `json:"type"`
	Ref        string `json:"ref"`
	SnapshotID *int64 `json:"snapshot-id"`
}

func toWire(v any, into any) bool {
	data, err := json.Marshal(v)
	return err == nil && json.Unmarshal(data, into) == nil
}

// totalKeys are the snapshot summary totals a rebase recomputes: each is
// C's total plus what S changed relative to P.
var totalKeys = []string{
	"total-records", "total-data-files", "total-files-size",
	"total-delete-files", "total-position-deletes", "total-equality-deletes",
}

// rebaseAppend returns updates that apply the fast append in updates on
// top of base, and the requirements that still hold, when reqs fail only
// because the append's branch moved. ok is false when the commit is not a
// rebaseable append (the caller reports the original requirement failure).
// The manifest list it writes is being synced when it returns: whoever
// publishes the updates waits for listSync first.
func (c *Catalog) rebaseAppend(ctx context.Context, a Area, base table.Metadata, reqs []table.Requirement, updates []table.Update) (_ []table.Requirement, _ []table.Update, listSync *fileSync, ok bool, err error) {
	if base == nil || base.Version() != 2 || len(updates) != 2 {
		return nil, nil, nil, false, nil
	}
	var add, set wireUpdate
	if !toWire(updates[0], &add) || !toWire(updates[1], &set) {
		return nil, nil, nil, false, nil
	}
	if add.Action != "add-snapshot" || set.Action != "set-snapshot-ref" {
		return nil, nil, nil, false, nil
	}
	s := add.Snapshot
	if s == nil || s.Summary == nil || s.Summary.Operation != table.OpAppend ||
		set.Type != table.BranchRef || set.SnapshotID != s.SnapshotID || s.ManifestList == "" {
		return nil, nil, nil, false, nil
	}
	if base.SnapshotByID(s.SnapshotID) != nil {
		return nil, nil, nil, false, nil
	}
	// Every requirement but the moved branch's must hold as sent.
	var keep []table.Requirement
	moved := false
	for _, r := range reqs {
		if r.Validate(base) == nil {
			keep = append(keep, r)
			continue
		}
		var w wireRequirement
		if !toWire(r, &w) || w.Type != "assert-ref-snapshot-id" || w.Ref != set.RefName || moved {
			return nil, nil, nil, false, nil
		}
		if (w.SnapshotID == nil) != (s.ParentSnapshotID == nil) ||
			(w.SnapshotID != nil && *w.SnapshotID != *s.ParentSnapshotID) {
			return nil, nil, nil, false, nil
		}
		moved = true
	}
	if !moved {
		return nil, nil, nil, false, nil
	}
	cur := base.SnapshotByName(set.RefName)
	if cur == nil {
		// The branch was dropped meanwhile: not an append any more.
		return nil, nil, nil, false, nil
	}
	var parent *table.Snapshot
	if s.ParentSnapshotID != nil {
		if parent = base.SnapshotByID(*s.ParentSnapshotID); parent == nil || !isAncestor(base, parent.SnapshotID, cur) {
			return nil, nil, nil, false, nil
		}
	}

	// The area's FileIO with avro.go's rewrite: the manifest list written
	// below is one strict Avro readers decode.
	fs, err := c.fsFunc(a)(ctx)
	if err != nil {
		return nil, nil, nil, false, err
	}
	wfs, canWrite := fs.(icebergio.WriteFileIO)
	if !canWrite {
		return nil, nil, nil, false, nil
	}
	sList, err := c.readManifestList(a, fs, s.ManifestList)
	if err != nil {
		// The client's own manifest list: a bad one is the client's error.
		return nil, nil, nil, false, fmt.Errorf("%w: manifest list %s of snapshot %d: %v", ErrBadUpdate, s.ManifestList, s.SnapshotID, err)
	}
	inherited := map[string]bool{}
	if parent != nil {
		pList, err := c.readManifestList(a, fs, parent.ManifestList)
		if err != nil {
			return nil, nil, nil, false, err
		}
		for _, m := range pList {
			inherited[m.FilePath()] = true
		}
	}
	seq := base.LastSequenceNumber() + 1
	var own []iceberg.ManifestFile
	for _, m := range sList {
		if inherited[m.FilePath()] {
			delete(inherited, m.FilePath())
			continue
		}
		if m.SnapshotID() != s.SnapshotID || m.ManifestContent() != iceberg.ManifestContentData ||
			m.ExistingDataFiles() != 0 || m.DeletedDataFiles() != 0 || m.KeyMetadata() != nil {
			return nil, nil, nil, false, nil // a merged or rewritten manifest
		}
		own = append(own, iceberg.NewManifestFile(2, m.FilePath(), m.Length(), m.PartitionSpecID(), s.SnapshotID).
			SequenceNum(seq, seq). // its entries inherit it: they are all added by S

			AddedFiles(m.AddedDataFiles()).AddedRows(m.AddedRows()).
			Partitions(m.Partitions()).Build())
	}
	if len(inherited) != 0 {
		return nil, nil, nil, false, nil // S dropped some of P's manifests: not a plain append
	}
	curList, err := c.readManifestList(a, fs, cur.ManifestList)
	if err != nil {
		return nil, nil, nil, false, err
	}

	var buf bytes.Buffer
	parentID := cur.SnapshotID
	list := append(own, curList...)
	if err := iceberg.WriteManifestList(2, &buf, s.SnapshotID, &parentID, &seq, 0, list); err != nil {
		return nil, nil, nil, false, fmt.Errorf("catalog: rebase manifest list: %w", err)
	}
	dir := s.ManifestList[:strings.LastIndexByte(s.ManifestList, '/')] // not path.Dir: it would fold "file:///" into "file:/"
	listLoc := fmt.Sprintf("%s/%s", dir, fmt.Sprintf("snap-%d-rebased-%d-%s.avro", s.SnapshotID, seq, uuid.NewString()))
	if err := wfs.WriteFile(listLoc, buf.Bytes()); err != nil {
		return nil, nil, nil, false, fmt.Errorf("catalog: write manifest list: %w", err)
	}
	// Synced in the background while the batch goes on; the commit that
	// publishes the list waits for it (durable.go).
	listSync = startSync(ctx, a, listLoc)
	c.lists.put(listLoc, list) // the next append's "current" list, as written

	next := *s
	next.ParentSnapshotID = &parentID
	next.SequenceNumber = seq
	next.ManifestList = listLoc
	next.TimestampMs = max(s.TimestampMs, cur.TimestampMs, base.LastUpdatedMillis())
	props := iceberg.Properties{}
	for k, v := range s.Summary.Properties {
		props[k] = v
	}
	for _, k := range totalKeys {
		sv, sok := summaryInt(s.Summary, k)
		if !sok {
			continue
		}
		var pv int64
		if parent != nil {
			pv, _ = summaryInt(parent.Summary, k)
		}
		cv, _ := summaryInt(cur.Summary, k)
		props[k] = strconv.FormatInt(cv+sv-pv, 10)
	}
	next.Summary = &table.Summary{Operation: s.Summary.Operation, Properties: props}
	return keep, []table.Update{
		table.NewAddSnapshotUpdate(&next),
		table.NewSetSnapshotRefUpdate(set.RefName, next.SnapshotID, table.BranchRef, 0, 0, 0),
	}, listSync, true, nil
}

// isAncestor reports whether id is head or one of head's ancestors in meta.
func isAncestor(meta table.Metadata, id int64, head *table.Snapshot) bool {
	for s, n := head, 0; s != nil && n < 1<<20; n++ { // n bounds a (corrupt) parent cycle
		if s.SnapshotID == id {
			return true
		}
		if s.ParentSnapshotID == nil {
			return false
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return false
}

// readManifestList returns the manifest list at loc in the area a (whose
// FileIO is fs), from the cache if seen. loc must resolve in a even when
// it is cached: the cache is shared by every repo. Callers must not
// modify the list.
func (c *Catalog) readManifestList(a Area, fs icebergio.IO, loc string) ([]iceberg.ManifestFile, error) {
	if _, err := a.Resolve(loc); err != nil {
		return nil, err
	}
	if l, ok := c.lists.get(loc); ok {
		return l, nil
	}
	f, err := fs.Open(loc)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := iceberg.ReadManifestList(f)
	if err == nil {
		c.lists.put(loc, l)
	}
	return l, err
}

func summaryInt(s *table.Summary, k string) (int64, bool) {
	if s == nil {
		return 0, false
	}
	v, ok := s.Properties[k]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
