package catalog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/objects"
)

// ErrBadPointer is returned (wrapped) when a blob is not a table pointer.
var ErrBadPointer = errors.New("catalog: malformed table pointer")

// Pointer is a table pointer: the blob at tables/<ns>/<table> in a data
// commit. Its text form is one "key value" line per field, always in this
// order, so `git log -p` shows per-table changes line by line:
//
//	table sales.orders
//	metadata-location file:///.../sales/orders/metadata/00003-<uuid>.metadata.json
//	snapshot-id 4837261
//	schema id:long,name:string,amount:double
//	rows 1204
//	files 3
//	bytes 8821
//	run r-7f3a               (omitted when empty)
//	code-commit 1a2b3c...    (omitted when unknown)
//
// rows, files and bytes are what the snapshot's manifests hold: the
// records and number of its live data files, and the size of every live
// file, data and delete (counts.go), whatever its summary says.
type Pointer struct {
	Table            TableName
	MetadataLocation string
	SnapshotID       int64 // 0: the table has no snapshot yet
	Schema           string
	Rows             int64
	Files            int64
	Bytes            int64
	Run              string
	CodeCommit       objects.Hash
}

// Marshal returns the pointer's deterministic text form.
func (p Pointer) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "table %s\n", p.Table)
	fmt.Fprintf(&b, "metadata-location %s\n", p.MetadataLocation)
	fmt.Fprintf(&b, "snapshot-id %d\n", p.SnapshotID)
	fmt.Fprintf(&b, "schema %s\n", p.Schema)
	fmt.Fprintf(&b, "rows %d\n", p.Rows)
	fmt.Fprintf(&b, "files %d\n", p.Files)
	fmt.Fprintf(&b, "bytes %d\n", p.Bytes)
	if p.Run != "" {
		fmt.Fprintf(&b, "run %s\n", p.Run)
	}
	if !p.CodeCommit.IsZero() {
		fmt.Fprintf(&b, "code-commit %s\n", p.CodeCommit)
	}
	return b.Bytes()
}

// ParsePointer parses a pointer's text form. It is strict: unknown keys,
// duplicate keys, keys out of order and a missing required key are errors.
func ParsePointer(data []byte) (Pointer, error) {
	var p Pointer
	order := []string{"table", "metadata-location", "snapshot-id", "schema", "rows", "files", "bytes", "run", "code-commit"}
	next := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	bad := func(format string, a ...any) (Pointer, error) {
		return Pointer{}, fmt.Errorf("%w: %s", ErrBadPointer, fmt.Sprintf(format, a...))
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return bad("must end with a newline")
	}
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return bad("line %q has no value", sc.Text())
		}
		i := next
		for i < len(order) && order[i] != key {
			i++
		}
		if i == len(order) {
			return bad("unexpected key %q", key)
		}
		if i < 7 && i != next {
			return bad("missing key %q", order[next])
		}
		next = i + 1
		var err error
		switch key {
		case "table":
			p.Table, err = ParseTableName(val)
		case "metadata-location":
			if val == "" {
				err = errors.New("empty metadata-location")
			}
			p.MetadataLocation = val
		case "snapshot-id":
			p.SnapshotID, err = strconv.ParseInt(val, 10, 64)
		case "schema":
			p.Schema = val
		case "rows":
			p.Rows, err = strconv.ParseInt(val, 10, 64)
		case "files":
			p.Files, err = strconv.ParseInt(val, 10, 64)
		case "bytes":
			p.Bytes, err = strconv.ParseInt(val, 10, 64)
		case "run":
			p.Run = val
		case "code-commit":
			p.CodeCommit, err = parseHash(val)
		}
		if err != nil {
			return bad("%s: %v", key, err)
		}
	}
	if next < 7 {
		return bad("missing key %q", order[next])
	}
	if !bytes.Equal(p.Marshal(), data) {
		return bad("not in canonical form")
	}
	return p, nil
}

// schemaString renders a schema as "name:type,..." for a pointer.
func schemaString(s *iceberg.Schema) string {
	if s == nil {
		return ""
	}
	parts := make([]string, 0, len(s.Fields()))
	for _, f := range s.Fields() {
		parts = append(parts, fmt.Sprintf("%s:%s", f.Name, f.Type))
	}
	return strings.Join(parts, ",")
}

// pointerFor builds the pointer for table t at metadata meta stored at loc,
// without its counts: Catalog.pointer counts rows, files and bytes from
// the current snapshot's manifests (counts.go).
func pointerFor(t TableName, meta table.Metadata, loc, run string, code objects.Hash) Pointer {
	p := Pointer{Table: t, MetadataLocation: loc, Schema: schemaString(meta.CurrentSchema()), Run: run, CodeCommit: code}
	if s := meta.CurrentSnapshot(); s != nil {
		p.SnapshotID = s.SnapshotID
	}
	return p
}
