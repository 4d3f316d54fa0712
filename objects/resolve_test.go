package objects

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// editDelta is a git delta from base to base[:keep]+tail: one copy, then
// inserts.
func editDelta(base []byte, keep int, tail []byte) (delta, target []byte) {
	target = append(append([]byte(nil), base[:keep]...), tail...)
	delta = binary.AppendUvarint(nil, uint64(len(base)))
	delta = binary.AppendUvarint(delta, uint64(len(target)))
	// Copy from offset 0 (no offset bytes), keep bytes (three size bytes).
	delta = append(delta, 0x80|0x10|0x20|0x40, byte(keep), byte(keep>>8), byte(keep>>16))
	for len(tail) > 0 {
		n := min(len(tail), 127)
		delta = append(delta, byte(n))
		delta = append(delta, tail[:n]...)
		tail = tail[n:]
	}
	return delta, target
}

// parallelPack builds a pack that gives pass 2 work for several workers at
// once: roots blobs, each the root of a tree of ofs-deltas depth levels
// deep with fan children per node (only the first child of each node has
// children of its own, so there are chains and fans), plus, per root, a
// ref-delta whose base comes later in the pack and a ref-delta against
// outside (an object of the repo). corrupt, when >= 0, makes the delta
// with that number (in pack order) copy past the end of its base. It
// returns the pack and every object the pack holds, by hash.
func parallelPack(t *testing.T, roots, depth, fan int, outside []byte, corrupt int) ([]byte, map[Hash][]byte) {
	t.Helper()
	var pw packWriter
	want := map[Hash][]byte{}
	nDelta := 0
	add := func(kind byte, prefix, body []byte) int {
		off := 12 + pw.buf.Len()
		pw.entry(kind, len(body), prefix, body)
		return off
	}
	delta := func(base []byte, keep int, tail string) ([]byte, []byte) {
		d, target := editDelta(base, keep, []byte(tail))
		if nDelta == corrupt {
			// Copy one byte more than the base has.
			d, _ = editDelta(base, keep, []byte(tail))
			d[len(binary.AppendUvarint(nil, uint64(len(base))))+len(binary.AppendUvarint(nil, uint64(len(target))))+1] = byte(len(base) + 1)
			d[len(binary.AppendUvarint(nil, uint64(len(base))))+len(binary.AppendUvarint(nil, uint64(len(target))))+2] = byte((len(base) + 1) >> 8)
		}
		nDelta++
		return d, target
	}
	outsideHash := plumbing.ComputeHash(plumbing.BlobObject, outside)
	for r := 0; r < roots; r++ {
		var lines []string
		// Odd roots are small (a few KiB), even ones larger: under the
		// tiny budgets both the small and the large result paths run.
		for i := 0; i < 20+40*(1-r%2); i++ {
			lines = append(lines, fmt.Sprintf("root %d line %d: select sum(amount) from orders group by customer", r, i))
		}
		content := []byte(strings.Join(lines, "\n") + "\n")
		want[plumbing.ComputeHash(plumbing.BlobObject, content)] = content
		off := add(byte(plumbing.BlobObject), nil, content)
		parentOff, parent := off, content
		for lvl := 0; lvl < depth; lvl++ {
			var nextOff int
			var next []byte
			for k := 0; k < fan; k++ {
				d, target := delta(parent, len(parent)-10*(k+1), fmt.Sprintf("root %d level %d child %d\n", r, lvl, k))
				o := add(packOfsDelta, ofsPrefix(12+pw.buf.Len()-parentOff), d)
				want[plumbing.ComputeHash(plumbing.BlobObject, target)] = target
				if k == 0 {
					nextOff, next = o, target
				}
			}
			parentOff, parent = nextOff, next
		}
		// A ref-delta on a blob that comes after it in the pack.
		later := []byte(fmt.Sprintf("root %d: a blob that comes after the delta on it\n%s", r, content))
		d, target := delta(later, len(later)-5, "later\n")
		lh := plumbing.ComputeHash(plumbing.BlobObject, later)
		add(packRefDelta, lh[:], d)
		want[plumbing.ComputeHash(plumbing.BlobObject, target)] = target
		add(3, nil, later)
		want[plumbing.ComputeHash(plumbing.BlobObject, later)] = later
		// A ref-delta on an object of the repo.
		d, target = delta(outside, len(outside)-3, fmt.Sprintf("on the repo's blob, root %d\n", r))
		add(packRefDelta, outsideHash[:], d)
		want[plumbing.ComputeHash(plumbing.BlobObject, target)] = target
	}
	return pw.bytes(), want
}

// budgets are the memory budgets pass 2 is tested under: the defaults,
// and ones so small that results spill, deltas spill and bases are evicted
// from the cache and read again.
var budgets = []struct {
	name string
	mem  memBudget
}{
	{"default budgets", memBudget{inline: defaultInlineBytes, inlineObject: defaultInlineObject, deltas: defaultDeltaBytes, cache: defaultBaseCacheBytes, records: defaultRecordBytes}},
	{"tiny budgets", memBudget{inline: 16 << 10, inlineObject: 4 << 10, deltas: 8 << 10, cache: 8 << 10, records: 4 << 10}},
}

// Deltas resolved by several workers at once (roots, chains, fans, a base
// later in the pack, a base in the repo) give git's objects, under any
// budget; run with -race.
func TestIngestParallelResolve(t *testing.T) {
	ctx := context.Background()
	outside := []byte(strings.Repeat("an object already in the repo\n", 20))
	pack, want := parallelPack(t, 8, 12, 3, outside, -1)
	for _, b := range budgets {
		t.Run(b.name, func(t *testing.T) {
			s := memStore(t, Limits{})
			s.mem = b.mem
			if _, err := s.Put(ctx, "demo", plumbing.BlobObject, outside); err != nil {
				t.Fatal(err)
			}
			for round := 0; round < 5; round++ {
				q := s.NewQuarantine("demo")
				hashes, err := q.IngestPack(ctx, bytes.NewReader(pack))
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if len(hashes) != len(want) {
					t.Fatalf("round %d: %d hashes, want %d", round, len(hashes), len(want))
				}
				for _, h := range hashes {
					data, ok := want[h]
					if !ok {
						t.Fatalf("round %d: ingest names %s, not an object of the pack", round, h)
					}
					o, err := q.Get(ctx, h)
					if err != nil || o.Type != plumbing.BlobObject || !bytes.Equal(o.Data, data) {
						t.Fatalf("round %d: object %s: %v", round, h, err)
					}
				}
				q.Close()
			}
		})
	}
}

// A corrupt delta among many resolved at once is refused, and nothing of
// the pack is left: no object, no spill, no marker, no delta record.
func TestIngestParallelCorruptDeltaRefused(t *testing.T) {
	ctx := context.Background()
	outside := []byte(strings.Repeat("an object already in the repo\n", 20))
	// 8 roots x (12 levels x 3 + 2) deltas: 150 is in the middle of the
	// fourth root's tree.
	pack, _ := parallelPack(t, 8, 12, 3, outside, 150)
	for _, b := range budgets {
		t.Run(b.name, func(t *testing.T) {
			s := memStore(t, Limits{})
			s.mem = b.mem
			if _, err := s.Put(ctx, "demo", plumbing.BlobObject, outside); err != nil {
				t.Fatal(err)
			}
			before := map[byte]int{}
			for _, p := range []byte("osSd") {
				before[p] = countKeys(t, s.db, p)
			}
			for round := 0; round < 5; round++ {
				q := s.NewQuarantine("demo")
				_, err := q.IngestPack(ctx, bytes.NewReader(pack))
				if !errors.Is(err, ErrBadPack) || !strings.Contains(err.Error(), "delta copy out of bounds") {
					t.Fatalf("round %d: corrupt delta: %v", round, err)
				}
				if n := len(q.Ingested()); n != 0 {
					t.Fatalf("round %d: refused pack left %d objects in the quarantine", round, n)
				}
				q.Close()
				for _, p := range []byte("osSd") {
					if n := countKeys(t, s.db, p); n != before[p] {
						t.Fatalf("round %d: %d keys with prefix %q after a refused pack, %d before", round, n, p, before[p])
					}
				}
			}
		})
	}
}
