package objects

import "github.com/go-git/go-git/v5/plumbing"

// Checks made at ingest: a pack's commits, trees and tags are checked (as
// Check would, with the same functions) while ingest holds their content,
// as it arrives whole or as a delta resolves, so that Check does not read
// them back from the quarantine. Check uses these results in its own
// order (hash order), so what it reports is what it would have found
// reading the objects; objects without one (a Put, a large object, past
// the budget) it reads as before.

// checked is the result of checking one object at ingest.
type checked struct {
	err   error
	notes []blobNote // a tree's .gitmodules and .gitattributes entries
	links kept
}

type blobNote struct {
	id   Hash
	role blobRole
}

// maxPrecheckObject is the largest object checked at ingest; larger ones
// Check reads back.
const maxPrecheckObject = 1 << 20

// precheck checks object h of type typ (not a blob), whose content is
// data, and returns the result and the memory it keeps.
func precheck(h Hash, typ Type, data []byte) (checked, int64) {
	var c checked
	if typ == plumbing.TreeObject {
		c.err = checkTree(h, data, func(tree, id Hash, role blobRole) {
			c.notes = append(c.notes, blobNote{id, role})
		})
	} else {
		c.err = CheckObject(h, typ, data)
	}
	if c.err == nil {
		l, err := objectLinks(h, typ, data)
		if err != nil {
			c.err = err
		} else {
			c.links = kept{typ: typ, links: l, ok: true}
		}
	}
	return c, 64 + int64(len(c.links.links))*linkSize + int64(len(c.notes))*24
}

// addChecked keeps c as the check of h within the ingest's budget
// (maxKeptLinkBytes). Hold in.mu.
func (in *ingest) addChecked(h Hash, c checked, n int64) {
	if in.checkedBytes+n > maxKeptLinkBytes {
		return
	}
	if in.checked == nil {
		in.checked = make(map[Hash]checked)
	}
	in.checked[h] = c
	in.checkedBytes += n
}
