package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Iceberg field ids in the Parquet files a node writes.
//
// An Iceberg table's data files carry the table schema's field id on each
// column (and nested field). The server gives a file the ids it lacks by
// writing it again (catalog/parquetids.go): one more copy of every output.
// So the runner writes them itself, with COPY's FIELD_IDS, as the server
// would give them to a new table made from the file: numbered from 1 in
// depth-first pre-order (a column, then its nested fields; a list's
// element; a map's key and value, then their nested fields), which is
// iceberg-go's fresh-id order. For a table that already exists with other
// ids the server still fixes the file; a column type the runner cannot
// read (a UNION, which Iceberg has not; a fixed-size ARRAY, whose element
// COPY gives no id) writes no ids at all, and a COPY that refuses the ids
// (a DuckDB that numbers some type otherwise) runs again without them.

// duckType is a DuckDB column type as DESCRIBE spells it, as far as the
// Parquet schema tree goes: a primitive, or a struct, list or map.
type duckType struct {
	kind   byte // 'p' primitive, 's' struct, 'l' list (or array), 'm' map
	names  []string
	fields []*duckType // struct fields; list element; map key and value
}

// errNoIDs is a type the runner does not number.
var errNoIDs = errors.New("no field ids for this type")

// parseDuckType parses a DuckDB type name: INTEGER, DECIMAL(18,2),
// VARCHAR[], STRUCT(a INTEGER, "b c" VARCHAR[]), MAP(K, V).
func parseDuckType(s string) (*duckType, error) {
	p := &typeParser{s: s}
	t, err := p.typ()
	if err != nil {
		return nil, err
	}
	if p.skipSpace(); p.i != len(p.s) {
		return nil, fmt.Errorf("type %q: trailing %q", s, p.s[p.i:])
	}
	return t, nil
}

type typeParser struct {
	s string
	i int
}

func (p *typeParser) skipSpace() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *typeParser) hasPrefixFold(w string) bool {
	return len(p.s)-p.i >= len(w) && strings.EqualFold(p.s[p.i:p.i+len(w)], w)
}

func (p *typeParser) expect(c byte) error {
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("type %q: want %q at %d", p.s, c, p.i)
	}
	p.i++
	return nil
}

func (p *typeParser) typ() (*duckType, error) {
	p.skipSpace()
	var t *duckType
	switch {
	case p.hasPrefixFold("STRUCT("):
		p.i += len("STRUCT(")
		t = &duckType{kind: 's'}
		for {
			name, err := p.name()
			if err != nil {
				return nil, err
			}
			ft, err := p.typ()
			if err != nil {
				return nil, err
			}
			t.names = append(t.names, name)
			t.fields = append(t.fields, ft)
			p.skipSpace()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if err := p.expect(')'); err != nil {
				return nil, err
			}
			break
		}
	case p.hasPrefixFold("MAP("):
		p.i += len("MAP(")
		k, err := p.typ()
		if err != nil {
			return nil, err
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
		v, err := p.typ()
		if err != nil {
			return nil, err
		}
		if err := p.expect(')'); err != nil {
			return nil, err
		}
		t = &duckType{kind: 'm', fields: []*duckType{k, v}}
	case p.hasPrefixFold("UNION("):
		return nil, errNoIDs
	default:
		if err := p.primitive(); err != nil {
			return nil, err
		}
		t = &duckType{kind: 'p'}
	}
	// List and array suffixes: INTEGER[], INTEGER[3][].
	for {
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '[' {
			return t, nil
		}
		j := strings.IndexByte(p.s[p.i:], ']')
		if j < 0 {
			return nil, fmt.Errorf("type %q: unclosed [", p.s)
		}
		if p.s[p.i+1:p.i+j] != "" {
			// A fixed-size ARRAY: COPY takes no id for its element.
			return nil, errNoIDs
		}
		p.i += j + 1
		t = &duckType{kind: 'l', fields: []*duckType{t}}
	}
}

// primitive skips a primitive type's name: words, and one parenthesised
// group with quoted strings in it (DECIMAL(18,2), ENUM('a', 'b')), up to a
// ',', ')' or '[' outside of it.
func (p *typeParser) primitive() error {
	start := p.i
	for p.i < len(p.s) {
		switch c := p.s[p.i]; c {
		case ',', ')', '[':
			if p.i == start {
				return fmt.Errorf("type %q: no type at %d", p.s, p.i)
			}
			return nil
		case '(':
			depth := 0
			for p.i < len(p.s) {
				switch p.s[p.i] {
				case '\'', '"':
					if err := p.skipQuoted(); err != nil {
						return err
					}
					continue
				case '(':
					depth++
				case ')':
					depth--
				}
				p.i++
				if depth == 0 {
					break
				}
			}
			if depth != 0 {
				return fmt.Errorf("type %q: unbalanced (", p.s)
			}
		case '\'', '"':
			if err := p.skipQuoted(); err != nil {
				return err
			}
		default:
			p.i++
		}
	}
	if p.i == start {
		return fmt.Errorf("type %q: no type", p.s)
	}
	return nil
}

// skipQuoted skips a string in quotes, doubled quotes inside.
func (p *typeParser) skipQuoted() error {
	q := p.s[p.i]
	for j := p.i + 1; j < len(p.s); j++ {
		if p.s[j] == q {
			if j+1 < len(p.s) && p.s[j+1] == q {
				j++
				continue
			}
			p.i = j + 1
			return nil
		}
	}
	return fmt.Errorf("type %q: unclosed quote", p.s)
}

// name reads a struct field's name: "quoted" or a bare word.
func (p *typeParser) name() (string, error) {
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		start := p.i
		if err := p.skipQuoted(); err != nil {
			return "", err
		}
		return strings.ReplaceAll(p.s[start+1:p.i-1], `""`, `"`), nil
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' {
		p.i++
	}
	if p.i == start {
		return "", fmt.Errorf("type %q: no field name at %d", p.s, p.i)
	}
	return p.s[start:p.i], nil
}

// fieldIDsOption is COPY's FIELD_IDS value for columns names of types
// types, numbered as a new table's fresh ids (see above); ok is false when
// the runner gives no ids (a type it cannot number, names that differ
// only in case, which FIELD_IDS cannot tell apart).
func fieldIDsOption(names []string, types []*duckType) (string, bool) {
	next := 0
	var b strings.Builder
	var fields func(names []string, types []*duckType) bool
	var children func(t *duckType) bool
	// entry writes one "name: id" or "name: {__duckdb_field_id: id, ...}".
	entry := func(name string, t *duckType) bool {
		next++
		b.WriteString(ident(name) + ": ")
		if t.kind == 'p' {
			b.WriteString(strconv.Itoa(next))
			return true
		}
		b.WriteString("{__duckdb_field_id: " + strconv.Itoa(next))
		if !children(t) {
			return false
		}
		b.WriteString("}")
		return true
	}
	children = func(t *duckType) bool {
		switch t.kind {
		case 's':
			b.WriteString(", ")
			return fields(t.names, t.fields)
		case 'l':
			b.WriteString(", ")
			return entry("element", t.fields[0])
		case 'm':
			// iceberg-go numbers a map's key and value, then their fields.
			// A nested key (rare) would be numbered after the value.
			k, v := t.fields[0], t.fields[1]
			if k.kind != 'p' {
				return false
			}
			b.WriteString(", ")
			if !entry("key", k) {
				return false
			}
			b.WriteString(", ")
			return entry("value", v)
		}
		return false
	}
	fields = func(names []string, types []*duckType) bool {
		seen := map[string]bool{}
		for i, n := range names {
			l := strings.ToLower(n)
			if seen[l] || l == "__duckdb_field_id" {
				return false
			}
			seen[l] = true
			if i > 0 {
				b.WriteString(", ")
			}
			if !entry(n, types[i]) {
				return false
			}
		}
		return true
	}
	b.WriteString("{")
	if !fields(names, types) {
		return "", false
	}
	b.WriteString("}")
	return b.String(), true
}

// outputFieldIDs returns the FIELD_IDS option for the rows of query q
// (its columns as DESCRIBE gives them), or "" when it gives none.
func outputFieldIDs(ctx context.Context, conn *sql.Conn, q string) (string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT column_name, column_type FROM (DESCRIBE ("+q+"\n))")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var names []string
	var types []*duckType
	ok := true
	for rows.Next() {
		var n, ts string
		if err := rows.Scan(&n, &ts); err != nil {
			return "", err
		}
		t, err := parseDuckType(ts)
		if err != nil {
			ok = false // still read the rows, for their error
			continue
		}
		names, types = append(names, n), append(types, t)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if !ok || len(names) == 0 {
		return "", nil
	}
	opt, ok := fieldIDsOption(names, types)
	if !ok {
		return "", nil
	}
	return opt, nil
}
