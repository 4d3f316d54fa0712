package catalog

import (
	"bytes"
	"compress/flate"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/weir-dev/weir/objects"
)

// endsWithEmptyStoredBlock reports whether a deflate stream can end with
// an empty stored block: such a block's last bytes are its LEN 0000 and
// NLEN ffff, so a stream that does not end with them does not end with
// one (the check refuses more than it must, never less).
func endsWithEmptyStoredBlock(z []byte) bool {
	return bytes.HasSuffix(z, []byte{0, 0, 0xff, 0xff})
}

// avroBlocks returns the compressed blocks of an Avro object container
// file and its codec.
func avroBlocks(t *testing.T, data []byte) (codec string, blocks [][]byte) {
	t.Helper()
	h, err := readOCFHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	off := h.end
	for off < len(data) {
		_, next, err := readLong(data, off)
		if err != nil {
			t.Fatal(err)
		}
		size, next, err := readLong(data, next)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, data[next:next+int(size)])
		if !bytes.Equal(data[next+int(size):next+int(size)+16], h.sync) {
			t.Fatal("bad sync marker")
		}
		off = next + int(size) + 16
	}
	return string(h.meta["avro.codec"]), blocks
}

// TestGoFlateEndsWithEmptyStoredBlock shows the check above catches what
// Go's compress/flate writes, and that deflateFinal's output passes it.
func TestGoFlateEndsWithEmptyStoredBlock(t *testing.T) {
	for _, in := range [][]byte{[]byte("manifest"), bytes.Repeat([]byte("abcdefgh"), 20000)} {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, -1)
		w.Write(in)
		w.Close()
		if !endsWithEmptyStoredBlock(b.Bytes()) {
			t.Fatalf("compress/flate output does not end with an empty stored block: % x", b.Bytes()[max(0, b.Len()-8):])
		}
		z, err := deflateFinal(in)
		if err != nil {
			t.Fatal(err)
		}
		if endsWithEmptyStoredBlock(z) {
			t.Fatalf("deflateFinal output ends with an empty stored block: % x", z[max(0, len(z)-8):])
		}
		out, err := io.ReadAll(flate.NewReader(bytes.NewReader(z)))
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("deflateFinal does not round-trip: %v", err)
		}
	}
}

// TestAvroFilesStrictReadersDecode: every manifest and manifest list the
// server writes (two appends, so the second list names the first's
// manifest too) has deflate blocks that do not end with an empty stored
// block and inflate to Avro records iceberg-go reads back; every
// manifest_length is the manifest's length on disk.
func TestAvroFilesStrictReadersDecode(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	orders := TableName{Namespace: "sales", Name: "orders"}
	c1, err := f.cat.WriteDataCommit(ctx, f.repo, objects.ZeroHash, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 0, 3)}}}, CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cat.WriteDataCommit(ctx, f.repo, c1, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 3, 2)}, Mode: ModeAppend}}, CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(f.dir, "warehouse")
	var lists, manifests int
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".avro") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		codec, blocks := avroBlocks(t, data)
		if codec != "deflate" || len(blocks) == 0 {
			t.Errorf("%s: codec %q, %d blocks", filepath.Base(p), codec, len(blocks))
		}
		for i, z := range blocks {
			if endsWithEmptyStoredBlock(z) {
				t.Errorf("%s: block %d ends with an empty stored deflate block: % x", filepath.Base(p), i, z[max(0, len(z)-8):])
			}
			if _, err := io.ReadAll(flate.NewReader(bytes.NewReader(z))); err != nil {
				t.Errorf("%s: block %d: %v", filepath.Base(p), i, err)
			}
		}
		if !strings.HasPrefix(filepath.Base(p), "snap-") {
			manifests++
			return nil
		}
		lists++
		list, err := iceberg.ReadManifestList(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		for _, m := range list {
			st, err := os.Stat(strings.TrimPrefix(m.FilePath(), "file://"))
			if err != nil {
				t.Fatal(err)
			}
			if m.Length() != st.Size() {
				t.Errorf("%s: manifest_length of %s is %d, the file has %d bytes", filepath.Base(p), filepath.Base(m.FilePath()), m.Length(), st.Size())
			}
			mf, err := os.Open(strings.TrimPrefix(m.FilePath(), "file://"))
			if err != nil {
				t.Fatal(err)
			}
			entries, err := iceberg.ReadManifest(m, mf, true)
			mf.Close()
			if err != nil || len(entries) != 1 {
				t.Errorf("%s: %d entries, %v", filepath.Base(m.FilePath()), len(entries), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lists != 2 || manifests != 2 {
		t.Fatalf("found %d manifest lists and %d manifests, want 2 and 2", lists, manifests)
	}
	tabs, err := f.cat.Tables(ctx, f.repo, c1)
	if err != nil {
		t.Fatal(err)
	}
	if p := tabs[orders]; p.Rows != 3 || p.Files != 1 {
		t.Fatalf("pointer after the first write: %+v", p)
	}
}
