package objects

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"io"
	"testing"
)

// TestIngestKeepsDeltaRecords: the deltas of a pushed pack become delta
// records, visible with the push's commit and not before; each record,
// applied to its base, gives its object; a refused pack leaves none.
func TestIngestKeepsDeltaRecords(t *testing.T) {
	g := newGitRepo(t)
	history(g, 8)
	pack := g.packRevs([]string{"--delta-base-offset"}, "HEAD")
	nDeltas := countKind(packKinds(t, pack), packOfsDelta)
	if nDeltas == 0 {
		t.Fatal("test pack has no deltas")
	}
	ctx := context.Background()
	for _, spilled := range []bool{false, true} {
		s := memStore(t, Limits{})
		if spilled {
			spillAll(s)
			s.mem.records = defaultRecordBytes // records read back from the deltas spill
		}
		q := s.NewQuarantine("r")
		hashes, err := q.IngestPack(ctx, bytes.NewReader(pack))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hashes {
			if _, ok, _ := s.Delta(ctx, "r", h); ok {
				t.Fatalf("spilled=%v: delta record of %s visible before the commit", spilled, h)
			}
		}
		commitQuarantine(t, q)
		records := 0
		for _, h := range hashes {
			d, ok, err := s.Delta(ctx, "r", h)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				continue
			}
			records++
			base, err := s.Get(ctx, "r", d.Base)
			if err != nil {
				t.Fatalf("base of %s: %v", h, err)
			}
			want, err := s.Get(ctx, "r", h)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := zlib.NewReader(bytes.NewReader(d.ZData))
			if err != nil {
				t.Fatal(err)
			}
			instr, err := io.ReadAll(zr)
			if err != nil || int64(len(instr)) != d.Size {
				t.Fatalf("record of %s: %d bytes of instructions (%v), header says %d", h, len(instr), err, d.Size)
			}
			var out bytes.Buffer
			br := bufio.NewReader(bytes.NewReader(instr))
			binary.ReadUvarint(br) // the base's size and the result's: patchDelta checks both
			binary.ReadUvarint(br)
			if err := patchDelta(&out, base.Data, br, int64(len(want.Data))); err != nil {
				t.Fatalf("record of %s does not apply to %s: %v", h, d.Base, err)
			}
			if !bytes.Equal(out.Bytes(), want.Data) {
				t.Fatalf("record of %s applied to %s does not give the object", h, d.Base)
			}
		}
		if records == 0 {
			t.Errorf("spilled=%v: no delta record kept of %d deltas", spilled, nDeltas)
		}
	}

	// A pack that fails (a bad trailing checksum) keeps no record.
	s := memStore(t, Limits{})
	bad := append([]byte(nil), pack...)
	bad[len(bad)-1] ^= 1
	q := s.NewQuarantine("r")
	if _, err := q.IngestPack(ctx, bytes.NewReader(bad)); err == nil {
		t.Fatal("a pack with a bad checksum was accepted")
	}
	q.Close()
	it, err := s.DB().NewIter([]byte("d"), []byte("e"))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if it.First() {
		t.Errorf("a refused pack left the delta record %x", it.Key())
	}
}

// FuzzParseDelta: a delta record value decodes or is refused, never
// panics, and what decodes encodes back to itself.
func FuzzParseDelta(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeDelta(Hash{1}, 5, []byte("zlib")))
	f.Add(make([]byte, 21))
	f.Add(append(bytes.Repeat([]byte{0xff}, 20), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f))
	f.Fuzz(func(t *testing.T, v []byte) {
		d, err := parseDelta(v)
		if err != nil {
			return
		}
		if len(v) == 0 {
			if !d.Base.IsZero() {
				t.Fatal("an empty record has a base")
			}
			return
		}
		if d.Base.IsZero() || d.Size < 0 || d.Size > maxStoredSize {
			t.Fatalf("decoded %+v", d)
		}
		d2, err := parseDelta(encodeDelta(d.Base, d.Size, d.ZData))
		if err != nil || d2.Base != d.Base || d2.Size != d.Size || !bytes.Equal(d2.ZData, d.ZData) {
			t.Fatalf("%+v re-encoded decodes to %+v, %v", d, d2, err)
		}
	})
}
