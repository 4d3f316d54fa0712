package catalog

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadName is returned (wrapped) for an illegal namespace or table name.
var ErrBadName = errors.New("catalog: invalid name")

// MaxNameLen is the longest namespace level or table name accepted.
const MaxNameLen = 128

// MaxNamespaceDepth is the most levels a namespace may have.
const MaxNamespaceDepth = 16

// MaxNamespaceLen is the longest a namespace may be written with its levels
// joined by '.': it is one entry name in a data tree and one folder name in
// the warehouse, and 255 bytes is the longest file name common file
// systems (and so a checkout of a data ref) hold.
const MaxNamespaceLen = 255

// TableName names one table: its namespace, levels of [a-z0-9_]+ joined by
// '.' ("sales", or "sales.eu" for the nested namespace [sales, eu]), and
// its name, [a-z0-9_]+. A level cannot hold '.', so the joined form names
// exactly one list of levels.
type TableName struct{ Namespace, Name string }

// Identifier returns the table's Iceberg identifier: the namespace's
// levels, then the name.
func (t TableName) Identifier() []string {
	return append(NamespaceLevels(t.Namespace), t.Name)
}

// NamespaceLevels splits a namespace into its levels.
func NamespaceLevels(ns string) []string { return strings.Split(ns, ".") }

// NamespaceParent returns the namespace ns is directly in, and false for a
// top-level namespace.
func NamespaceParent(ns string) (string, bool) {
	i := strings.LastIndexByte(ns, '.')
	if i < 0 {
		return "", false
	}
	return ns[:i], true
}

// JoinNamespace checks the levels of a namespace and joins them with '.'.
// Each level is a name (ValidateName, so no '.', '/', NUL, unit separator
// or empty level), there are 1 to MaxNamespaceDepth of them, and the
// joined form is at most MaxNamespaceLen bytes.
func JoinNamespace(levels []string) (string, error) {
	if len(levels) == 0 {
		return "", fmt.Errorf("%w: empty namespace", ErrBadName)
	}
	if len(levels) > MaxNamespaceDepth {
		return "", fmt.Errorf("%w: namespace has %d levels; at most %d are allowed", ErrBadName, len(levels), MaxNamespaceDepth)
	}
	for i, l := range levels {
		if err := ValidateName(l); err != nil {
			if len(levels) == 1 {
				return "", err
			}
			return "", fmt.Errorf("level %d of the namespace: %w", i+1, err)
		}
	}
	ns := strings.Join(levels, ".")
	if len(ns) > MaxNamespaceLen {
		return "", fmt.Errorf("%w: namespace %.40q...: %d bytes with its levels joined by '.'; at most %d are allowed", ErrBadName, ns, len(ns), MaxNamespaceLen)
	}
	return ns, nil
}

// ValidateNamespace checks a namespace in its joined form ("a" or "a.b").
func ValidateNamespace(ns string) error {
	if len(ns) > MaxNamespaceLen {
		return fmt.Errorf("%w: namespace longer than %d bytes", ErrBadName, MaxNamespaceLen)
	}
	_, err := JoinNamespace(NamespaceLevels(ns))
	return err
}

// String returns "namespace.name".
func (t TableName) String() string { return t.Namespace + "." + t.Name }

// path returns the table's path in a data tree: "tables/<ns>/<name>",
// <ns> with its levels joined by '.'.
func (t TableName) path() string { return "tables/" + t.Namespace + "/" + t.Name }

// Validate reports whether both parts are legal names.
func (t TableName) Validate() error {
	if err := ValidateNamespace(t.Namespace); err != nil {
		return fmt.Errorf("namespace of table %q: %w", t.String(), err)
	}
	if err := ValidateName(t.Name); err != nil {
		return fmt.Errorf("table %q: %w", t.String(), err)
	}
	return nil
}

// ParseTableName parses "namespace.name", where the namespace may have
// levels ("sales.eu.orders" is table orders in namespace [sales, eu]).
func ParseTableName(s string) (TableName, error) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return TableName{}, fmt.Errorf("%w %q: want <namespace>.<table>", ErrBadName, s)
	}
	t := TableName{Namespace: s[:i], Name: s[i+1:]}
	return t, t.Validate()
}

// ValidateName checks one namespace or table name: 1 to MaxNameLen
// characters of [a-z0-9_]. So "..", "/", NUL, upper case and the empty
// string are all refused.
func ValidateName(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty name", ErrBadName)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w %q: longer than %d characters", ErrBadName, s, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("%w %q: character %q not allowed (use a-z, 0-9 and _)", ErrBadName, s, c)
		}
	}
	return nil
}
