package catalog

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/twmb/avro"

	kflate "github.com/klauspost/compress/flate"
)

// Avro files strict readers decode.
//
// iceberg-go writes manifests and manifest lists as Avro object container
// files with the deflate codec, compressing each block with Go's
// compress/flate, whose Close always ends the stream with an empty final
// stored block (bytes 01 00 00 ff ff). That is valid deflate, but some
// readers' inflaters refuse it (issue 15: icebird). So every Avro file
// the server writes (through the FileIO handed to iceberg-go, see
// Catalog.fsFunc, and the manifest lists rebase.go writes) is rewritten
// block by block before it reaches the warehouse: each block is inflated
// and deflated again in one go with its last block marked final
// (klauspost/compress's StatelessDeflate with eof), so no block ends with
// an empty one:
//
//	"Obj" 1 | metadata map | sync(16)            header: kept byte for byte
//	count:long size:long data[size] sync(16)      per block: data re-deflated,
//	...                                           size rewritten
//
// A manifest's length is recorded in the manifest list that names it
// (manifest_length), and iceberg-go computes it from the bytes it wrote,
// before the rewrite. So the server remembers the new length of every
// manifest it rewrote (avroLengths) and, when it rewrites a manifest list
// (records of the Avro type "manifest_file"), decodes the list's records
// and sets manifest_length of each manifest it rewrote to the length on
// disk. Files that are not deflate-coded, or not Avro object container
// files, are written unchanged.

// avroMagic starts every Avro object container file.
var avroMagic = []byte{'O', 'b', 'j', 1}

// avroLengths maps the location of a manifest the server rewrote to its
// length before (as iceberg-go recorded it) and after. Bounded: oldest
// entries are dropped first (a manifest list is written moments after
// its manifests).
type avroLengths struct {
	mu    sync.Mutex
	m     map[string][2]int64
	order []string
}

const avroLengthsMax = 1 << 14

func (l *avroLengths) put(loc string, before, after int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string][2]int64{}
	}
	if _, ok := l.m[loc]; !ok {
		l.order = append(l.order, loc)
	}
	l.m[loc] = [2]int64{before, after}
	for len(l.order) > avroLengthsMax {
		delete(l.m, l.order[0])
		l.order = l.order[1:]
	}
}

func (l *avroLengths) get(loc string) ([2]int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[loc]
	return v, ok
}

// ocfHeader is the parsed header of an Avro object container file.
type ocfHeader struct {
	end  int // offset of the first block
	meta map[string][]byte
	sync []byte
}

func readLong(b []byte, off int) (int64, int, error) {
	u, n := binary.Uvarint(b[off:])
	if n <= 0 {
		return 0, off, errors.New("avro: bad long")
	}
	return int64(u>>1) ^ -int64(u&1), off + n, nil
}

func appendLong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, uint64(v<<1)^uint64(v>>63))
}

func readOCFHeader(b []byte) (ocfHeader, error) {
	h := ocfHeader{meta: map[string][]byte{}}
	if !bytes.HasPrefix(b, avroMagic) {
		return h, errors.New("avro: not an object container file")
	}
	off := len(avroMagic)
	readBytes := func() ([]byte, error) {
		n, next, err := readLong(b, off)
		if err != nil {
			return nil, err
		}
		if n < 0 || int64(len(b)-next) < n {
			return nil, errors.New("avro: bad length in header")
		}
		off = next + int(n)
		return b[next:off], nil
	}
	for {
		n, next, err := readLong(b, off)
		if err != nil {
			return h, err
		}
		off = next
		if n == 0 {
			break
		}
		if n < 0 {
			n = -n
			if _, off, err = readLong(b, off); err != nil {
				return h, err
			}
		}
		for range n {
			k, err := readBytes()
			if err != nil {
				return h, err
			}
			v, err := readBytes()
			if err != nil {
				return h, err
			}
			h.meta[string(k)] = v
		}
	}
	if len(b)-off < 16 {
		return h, errors.New("avro: header without sync marker")
	}
	h.sync, h.end = b[off:off+16], off+16
	return h, nil
}

// deflateFinal deflates raw as one stream whose last block holds data and
// is marked final.
func deflateFinal(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := kflate.StatelessDeflate(&buf, raw, true, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// rewriteAvro returns the Avro object container file data with every
// deflate block re-deflated by deflateFinal and, for a manifest list,
// the manifest_length of manifests in lens set to their length on disk.
// Data that is not a deflate-coded container file is returned unchanged.
func rewriteAvro(data []byte, lens *avroLengths) ([]byte, error) {
	h, err := readOCFHeader(data)
	if err != nil || string(h.meta["avro.codec"]) != "deflate" {
		return data, nil
	}
	var schema *avro.Schema
	if lens != nil && isManifestList(h.meta["avro.schema"]) {
		if schema, err = avro.Parse(string(h.meta["avro.schema"])); err != nil {
			return nil, fmt.Errorf("manifest list schema: %w", err)
		}
	}
	out := append(make([]byte, 0, len(data)), data[:h.end]...)
	off := h.end
	for off < len(data) {
		count, next, err := readLong(data, off)
		if err != nil {
			return nil, err
		}
		size, next, err := readLong(data, next)
		if err != nil {
			return nil, err
		}
		if size < 0 || int64(len(data)-next) < size+16 || count < 0 {
			return nil, errors.New("avro: truncated block")
		}
		block := data[next : next+int(size)]
		if !bytes.Equal(data[next+int(size):next+int(size)+16], h.sync) {
			return nil, errors.New("avro: bad sync marker")
		}
		off = next + int(size) + 16
		raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(block)))
		if err != nil {
			return nil, fmt.Errorf("avro: inflate block: %w", err)
		}
		if schema != nil {
			if raw, err = fixLengths(schema, raw, count, lens); err != nil {
				return nil, err
			}
		}
		z, err := deflateFinal(raw)
		if err != nil {
			return nil, err
		}
		out = appendLong(out, count)
		out = appendLong(out, int64(len(z)))
		out = append(out, z...)
		out = append(out, h.sync...)
	}
	return out, nil
}

// isManifestList reports whether an Avro schema (JSON) is the record type
// of manifest list entries.
func isManifestList(schema []byte) bool {
	return bytes.Contains(schema, []byte(`"manifest_file"`)) && bytes.Contains(schema, []byte(`"manifest_length"`))
}

// fixLengths decodes count manifest list records from raw and sets the
// manifest_length of those lens knows to their rewritten length.
func fixLengths(schema *avro.Schema, raw []byte, count int64, lens *avroLengths) ([]byte, error) {
	out := make([]byte, 0, len(raw))
	rest := raw
	for range count {
		var rec any
		var err error
		if rest, err = schema.Decode(rest, &rec); err != nil {
			return nil, fmt.Errorf("manifest list record: %w", err)
		}
		m, ok := rec.(map[string]any)
		if !ok {
			return nil, errors.New("manifest list record is not a record")
		}
		path, _ := m["manifest_path"].(string)
		length, _ := m["manifest_length"].(int64)
		if l, ok := lens.get(path); ok && l[0] == length {
			m["manifest_length"] = l[1]
		}
		if out, err = schema.AppendEncode(out, m); err != nil {
			return nil, fmt.Errorf("manifest list record: %w", err)
		}
	}
	if len(rest) != 0 {
		return nil, errors.New("avro: trailing bytes in a manifest list block")
	}
	return out, nil
}

// avroIO is the FileIO the catalog hands iceberg-go: the area's, with
// every Avro file it creates rewritten by rewriteAvro when it is closed.
type avroIO struct {
	inner icebergio.IO
	lens  *avroLengths
}

var (
	_ icebergio.ReadFileIO  = avroIO{}
	_ icebergio.WriteFileIO = avroIO{}
	_ icebergio.StatIO      = avroIO{}
)

// fsFunc is the iceberg-go FileIO factory of a table of the repo whose
// area is a: a FileIO confined to that area, whose Avro files strict
// readers decode.
func (c *Catalog) fsFunc(a Area) func(ctx context.Context) (icebergio.IO, error) {
	return func(ctx context.Context) (icebergio.IO, error) {
		inner, err := a.IO(ctx)
		if err != nil {
			return nil, err
		}
		return avroIO{inner: inner, lens: &c.avroLens}, nil
	}
}

// Open implements icebergio.IO.
func (f avroIO) Open(name string) (icebergio.File, error) { return f.inner.Open(name) }

// Remove implements icebergio.IO.
func (f avroIO) Remove(name string) error { return f.inner.Remove(name) }

// ReadFile implements icebergio.ReadFileIO.
func (f avroIO) ReadFile(name string) ([]byte, error) {
	if rf, ok := f.inner.(icebergio.ReadFileIO); ok {
		return rf.ReadFile(name)
	}
	fh, err := f.inner.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(fh)
}

// Stat implements icebergio.StatIO.
func (f avroIO) Stat(name string) (fs.FileInfo, error) {
	if sf, ok := f.inner.(icebergio.StatIO); ok {
		return sf.Stat(name)
	}
	fh, err := f.inner.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return fh.Stat()
}

func (f avroIO) writer() (icebergio.WriteFileIO, error) {
	wf, ok := f.inner.(icebergio.WriteFileIO)
	if !ok {
		return nil, errors.New("catalog: warehouse IO cannot write")
	}
	return wf, nil
}

// Create implements icebergio.WriteFileIO: an Avro file is buffered and
// rewritten when closed.
func (f avroIO) Create(name string) (icebergio.FileWriter, error) {
	wf, err := f.writer()
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(name, ".avro") {
		return wf.Create(name)
	}
	return &avroFile{io: f, name: name}, nil
}

// WriteFile implements icebergio.WriteFileIO.
func (f avroIO) WriteFile(name string, p []byte) error {
	wf, err := f.writer()
	if err != nil {
		return err
	}
	if strings.HasSuffix(name, ".avro") {
		if p, err = f.rewrite(name, p); err != nil {
			return err
		}
	}
	return wf.WriteFile(name, p)
}

func (f avroIO) rewrite(name string, p []byte) ([]byte, error) {
	out, err := rewriteAvro(p, f.lens)
	if err != nil {
		return nil, fmt.Errorf("catalog: rewrite %s: %w", name[strings.LastIndexByte(name, '/')+1:], err)
	}
	f.lens.put(name, int64(len(p)), int64(len(out)))
	return out, nil
}

// avroFile buffers an Avro file iceberg-go writes; Close rewrites it and
// writes it through the area.
type avroFile struct {
	io     avroIO
	name   string
	buf    bytes.Buffer
	closed bool
}

func (w *avroFile) Write(p []byte) (int, error) { return w.buf.Write(p) }

// ReadFrom lets io.Copy fill the buffer directly.
func (w *avroFile) ReadFrom(r io.Reader) (int64, error) { return w.buf.ReadFrom(r) }

func (w *avroFile) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.io.WriteFile(w.name, w.buf.Bytes())
}
