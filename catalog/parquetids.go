package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Iceberg field ids in the Parquet files the server puts in a table.
//
// An Iceberg reader matches a data file's columns to the table's by the
// Parquet schema's field_id; a file without them can only be read through
// the table's name mapping, which not every reader applies. weir-node
// writes its outputs with the ids a new table gives their columns
// (hooks/node/fieldids.go), which go in as they are while the table keeps
// those ids; a file with other ids or none (an import, a user's own file,
// a table whose ids came from elsewhere, a type the node does not number),
// before it goes into the warehouse, gets from the server the table
// schema's id on every column (and on every
// nested field, list element, map key and value), matched by name: it
// copies the file's data pages byte for byte and writes a new footer
// whose schema elements carry the ids (footerWithFieldIDs: about the cost
// of a copy, BenchmarkParquetFieldIDs); a file it cannot re-footer (one
// that stores its Arrow schema, or is encrypted) is decoded and written
// again. A file whose ids already are the table's goes in as it is (a
// hard link when it can).

// fieldIDKey is the Arrow field metadata key pqarrow reads and writes as
// the Parquet field_id.
const fieldIDKey = table.ArrowParquetFieldIDKey

// withFieldIDs returns the Arrow schema as with every field's metadata
// carrying its id in the Iceberg schema sc, and whether any id differs
// from the one as carried.
func withFieldIDs(as *arrow.Schema, sc *iceberg.Schema) (*arrow.Schema, bool, error) {
	changed := false
	fields := make([]arrow.Field, len(as.Fields()))
	for i, f := range as.Fields() {
		nf, ok := sc.FindFieldByNameCaseInsensitive(f.Name)
		if !ok {
			return nil, false, fmt.Errorf("column %q is not in the table schema", f.Name)
		}
		var err error
		if fields[i], err = fieldWithID(f, nf.ID, nf.Type, &changed); err != nil {
			return nil, false, err
		}
	}
	md := as.Metadata()
	return arrow.NewSchema(fields, &md), changed, nil
}

func fieldWithID(f arrow.Field, id int, typ iceberg.Type, changed *bool) (arrow.Field, error) {
	t, err := typeWithIDs(f.Type, typ, changed)
	if err != nil {
		return f, fmt.Errorf("column %q: %w", f.Name, err)
	}
	f.Type = t
	want := strconv.Itoa(id)
	keys, vals := f.Metadata.Keys(), f.Metadata.Values()
	if i := f.Metadata.FindKey(fieldIDKey); i >= 0 {
		if vals[i] != want {
			*changed = true
			vals = append([]string(nil), vals...)
			vals[i] = want
		}
	} else {
		*changed = true
		keys = append(append([]string(nil), keys...), fieldIDKey)
		vals = append(append([]string(nil), vals...), want)
	}
	f.Metadata = arrow.NewMetadata(keys, vals)
	return f, nil
}

func typeWithIDs(t arrow.DataType, typ iceberg.Type, changed *bool) (arrow.DataType, error) {
	switch at := t.(type) {
	case *arrow.StructType:
		st, ok := typ.(*iceberg.StructType)
		if !ok {
			return nil, fmt.Errorf("a struct where the table has %s", typ)
		}
		fields := make([]arrow.Field, at.NumFields())
		for i, f := range at.Fields() {
			var nf *iceberg.NestedField
			for j := range st.FieldList {
				if st.FieldList[j].Name == f.Name {
					nf = &st.FieldList[j]
				}
			}
			if nf == nil {
				return nil, fmt.Errorf("field %q is not in the table schema", f.Name)
			}
			var err error
			if fields[i], err = fieldWithID(f, nf.ID, nf.Type, changed); err != nil {
				return nil, err
			}
		}
		return arrow.StructOf(fields...), nil
	case *arrow.MapType:
		mt, ok := typ.(*iceberg.MapType)
		if !ok {
			return nil, fmt.Errorf("a map where the table has %s", typ)
		}
		k, err := fieldWithID(at.KeyField(), mt.KeyID, mt.KeyType, changed)
		if err != nil {
			return nil, err
		}
		v, err := fieldWithID(at.ItemField(), mt.ValueID, mt.ValueType, changed)
		if err != nil {
			return nil, err
		}
		out := arrow.MapOfWithMetadata(k.Type, k.Metadata, v.Type, v.Metadata)
		out.KeysSorted = at.KeysSorted
		out.SetItemNullable(v.Nullable)
		return out, nil
	case *arrow.ListType, *arrow.LargeListType:
		lt, ok := typ.(*iceberg.ListType)
		if !ok {
			return nil, fmt.Errorf("a list where the table has %s", typ)
		}
		e, err := fieldWithID(at.(arrow.ListLikeType).ElemField(), lt.ElementID, lt.Element, changed)
		if err != nil {
			return nil, err
		}
		if _, large := at.(*arrow.LargeListType); large {
			return arrow.LargeListOfField(e), nil
		}
		return arrow.ListOfField(e), nil
	case arrow.NestedType:
		return nil, fmt.Errorf("unsupported nested type %s", t)
	}
	return t, nil
}

// retype returns d as an array of type t, which differs from d's type at
// most in nested fields' metadata.
func retype(d arrow.ArrayData, t arrow.DataType) (arrow.ArrayData, error) {
	children := d.Children()
	var kids []arrow.ArrayData
	switch nt := t.(type) {
	case *arrow.StructType:
		if len(children) != nt.NumFields() {
			return nil, errors.New("struct children do not match")
		}
		for i, c := range children {
			k, err := retype(c, nt.Field(i).Type)
			if err != nil {
				return nil, err
			}
			kids = append(kids, k)
		}
	case *arrow.MapType:
		k, err := retype(children[0], nt.Elem())
		if err != nil {
			return nil, err
		}
		kids = []arrow.ArrayData{k}
	case arrow.ListLikeType:
		k, err := retype(children[0], nt.Elem())
		if err != nil {
			return nil, err
		}
		kids = []arrow.ArrayData{k}
	default:
		return array.NewData(t, d.Len(), d.Buffers(), children, d.NullN(), d.Offset()), nil
	}
	out := array.NewData(t, d.Len(), d.Buffers(), kids, d.NullN(), d.Offset())
	for _, k := range kids {
		k.Release() // out holds them
	}
	return out, nil
}

// footerWithFieldIDs writes the Parquet file p (open as rdr) to dst with
// only its footer changed: the field_id of each schema element set to the
// one ToParquet gives the element of want (the file's own Arrow schema
// with the table's ids) at the same place. The data pages are copied byte
// for byte (their offsets do not move: the footer is last), which costs a
// copy, not a decode and encode. ok is false, and nothing is written, when
// the file is encrypted, stores an Arrow schema (ARROW:schema, which would
// then disagree with the footer), or when want's Parquet schema does not
// have the file's shape: the caller writes the file again instead.
func footerWithFieldIDs(p, dst string, rdr *file.Reader, want *arrow.Schema) (bool, error) {
	md := rdr.MetaData()
	if md.FileDecryptor != nil || md.IsSetEncryptionAlgorithm() || md.KeyValueMetadata().FindValue("ARROW:schema") != nil {
		return false, nil
	}
	ps, err := pqarrow.ToParquet(want, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		return false, nil
	}
	var ids []int32
	var shape []int
	var walk func(n schema.Node)
	walk = func(n schema.Node) {
		ids = append(ids, n.FieldID())
		if g, ok := n.(*schema.GroupNode); ok {
			shape = append(shape, g.NumFields())
			for i := range g.NumFields() {
				walk(g.Field(i))
			}
		} else {
			shape = append(shape, -1)
		}
	}
	walk(ps.Root())
	elems := md.FileMetaData.Schema
	if len(elems) != len(ids) {
		return false, nil
	}
	for i, e := range elems {
		n := -1
		if e.NumChildren != nil {
			n = int(*e.NumChildren)
		}
		if n != shape[i] {
			return false, nil
		}
	}
	for i, e := range elems {
		if i == 0 || ids[i] < 0 {
			e.FieldID = nil
			continue
		}
		id := ids[i]
		e.FieldID = &id
	}

	in, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return false, err
	}
	var tail [8]byte
	if _, err := in.ReadAt(tail[:], st.Size()-8); err != nil {
		return false, err
	}
	if string(tail[4:]) != "PAR1" {
		return false, nil
	}
	footerStart := st.Size() - 8 - int64(binary.LittleEndian.Uint32(tail[:4]))
	if footerStart < 4 {
		return false, errors.New("bad Parquet footer length")
	}
	out, err := os.Create(dst)
	if err != nil {
		return false, err
	}
	defer out.Close()
	if _, err := io.Copy(out, io.NewSectionReader(in, 0, footerStart)); err != nil {
		return false, err
	}
	var footer bytes.Buffer
	if _, err := md.WriteTo(&footer, nil); err != nil {
		return false, err
	}
	binary.LittleEndian.PutUint32(tail[:4], uint32(footer.Len()))
	if _, err := out.Write(append(footer.Bytes(), tail[:]...)); err != nil {
		return false, err
	}
	return true, out.Close()
}

// parquetWithFieldIDs reports whether the Parquet file at p carries the ids
// of the Iceberg schema sc, and else writes it again to dst with them.
// It returns the file to put in the table: p or dst.
func parquetWithFieldIDs(ctx context.Context, p, dst string, sc *iceberg.Schema) (string, error) {
	return parquetWithFieldIDsTo(ctx, p, func() (string, error) { return dst, nil }, sc)
}

// parquetWithFieldIDsTo is parquetWithFieldIDs with the copy's name asked
// of newDst only when there is one to write.
func parquetWithFieldIDsTo(ctx context.Context, p string, newDst func() (string, error), sc *iceberg.Schema) (string, error) {
	rdr, err := file.OpenParquetFile(p, false)
	if err != nil {
		return "", err
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return "", err
	}
	as, err := fr.Schema()
	if err != nil {
		return "", err
	}
	want, changed, err := withFieldIDs(as, sc)
	if err != nil {
		return "", err
	}
	if !changed {
		return p, nil
	}
	dst, err := newDst()
	if err != nil {
		return "", err
	}
	if ok, err := footerWithFieldIDs(p, dst, rdr, want); ok || err != nil {
		return dst, err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return "", err
	}
	defer rr.Release()
	out, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer out.Close()
	props := parquet.NewWriterProperties(parquet.WithCompression(compressionOf(rdr)), parquet.WithStats(true))
	w, err := pqarrow.NewFileWriter(want, out, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return "", err
	}
	for rr.Next() {
		rec := rr.RecordBatch()
		cols := make([]arrow.Array, rec.NumCols())
		for i := range cols {
			d, err := retype(rec.Column(i).Data(), want.Field(i).Type)
			if err != nil {
				return "", fmt.Errorf("column %q: %w", want.Field(i).Name, err)
			}
			cols[i] = array.MakeFromData(d)
			d.Release()
		}
		nr := array.NewRecordBatch(want, cols, rec.NumRows())
		for _, c := range cols {
			c.Release()
		}
		err := w.WriteBuffered(nr)
		nr.Release()
		if err != nil {
			return "", err
		}
	}
	if err := rr.Err(); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return dst, nil
}

// compressionOf is the codec of the file's first column chunk (Snappy
// when the file has none): the rewrite keeps the writer's choice.
func compressionOf(r *file.Reader) compress.Compression {
	if r.NumRowGroups() > 0 {
		if cc, err := r.MetaData().RowGroup(0).ColumnChunk(0); err == nil {
			return cc.Compression()
		}
	}
	return compress.Codecs.Snappy
}

// withTableIDs returns f, or a copy of it beside it (else in the temporary
// folder) with the field ids of sc: the file to put in the table. A copy
// is the caller's to remove.
func (c *Catalog) withTableIDs(ctx context.Context, f string, sc *iceberg.Schema) (string, error) {
	var tmp string
	out, err := parquetWithFieldIDsTo(ctx, f, func() (string, error) {
		t, err := os.CreateTemp(filepath.Dir(f), ".weir-ids-*.parquet")
		if err != nil {
			if t, err = os.CreateTemp("", "weir-ids-*.parquet"); err != nil {
				return "", err
			}
		}
		t.Close()
		tmp = t.Name()
		// The copy goes into the warehouse (a hard link when it can): with
		// the mode of the warehouse's files, which readers in sandboxes
		// open as another user (CreateTemp makes it 0600).
		return tmp, os.Chmod(tmp, 0o644)
	}, sc)
	if tmp != "" && (out != tmp || err != nil) {
		os.Remove(tmp)
	}
	return out, err
}
