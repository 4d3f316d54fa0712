package gc

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// An object pushed as a delta is stored as that delta (a delta value,
// objects/chain.go) on its base. When no ref reaches the base, a
// collection keeps it all the same: the object that refs reach is read
// through it.
func TestDeltaValuesKeepTheirBase(t *testing.T) {
	f := newFixture(t, memkv.New(), t.TempDir())
	ctx := context.Background()
	baseText := strings.Repeat("a line of the old version\n", 20)
	base := f.put(t, plumbing.BlobObject, baseText) // reached by no ref
	newText := baseText[:len(baseText)-4] + "new\n"
	blob := plumbing.ComputeHash(plumbing.BlobObject, []byte(newText))

	// A pack of one ref-delta: copy all but the last 4 bytes, insert "new\n".
	keep := len(baseText) - 4
	d := binary.AppendUvarint(nil, uint64(len(baseText)))
	d = binary.AppendUvarint(d, uint64(len(newText)))
	d = append(d, 0x80|0x10|0x20, byte(keep), byte(keep>>8), 4)
	d = append(d, "new\n"...)
	var pack bytes.Buffer
	pack.WriteString("PACK")
	binary.Write(&pack, binary.BigEndian, uint32(2))
	binary.Write(&pack, binary.BigEndian, uint32(1))
	pack.WriteByte(7<<4 | byte(len(d)&0x0f) | 0x80)
	pack.WriteByte(byte(len(d) >> 4))
	pack.Write(base[:])
	zw := zlib.NewWriter(&pack)
	zw.Write(d)
	zw.Close()
	sum := sha1.Sum(pack.Bytes())
	pack.Write(sum[:])

	q := f.objs.NewQuarantine(repo)
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack.Bytes())); err != nil {
		t.Fatal(err)
	}
	tree, err := q.Put(plumbing.TreeObject, []byte("100644 f\x00"+string(blob[:])))
	if err != nil {
		t.Fatal(err)
	}
	commit, err := q.Put(plumbing.CommitObject, []byte(commitText(tree, objects.ZeroHash, "c")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.objs.Delta(ctx, repo, blob); err != nil || ok {
		t.Fatalf("delta of the blob before the push commits: %v %v", ok, err)
	}
	if err := f.refs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", Old: objects.ZeroHash, New: commit}}, q, "push"); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := f.objs.Delta(ctx, repo, blob); err != nil || !ok || d.Base != base {
		t.Fatalf("the blob is not stored as a delta on its base: %v %v %v", d.Base, ok, err)
	}
	if _, err := f.collector(2*time.Hour).Run(ctx, expiring()); err != nil {
		t.Fatal(err)
	}
	if !has(t, f.objs, base) {
		t.Fatal("the base of a kept delta value was collected")
	}
	o, err := objects.New(f.db, objects.Limits{}).Get(ctx, repo, blob)
	if err != nil || string(o.Data) != newText {
		t.Fatalf("the blob after a collection: %v", err)
	}
}
