package catalog

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadName is returned (wrapped) for an illegal namespace or table name.
var ErrBadName = errors.New("catalog: invalid name")

// MaxNameLen is the longest namespace or table name accepted.
const MaxNameLen = 128

// TableName names one table: namespace and name, each [a-z0-9_]+.
type TableName struct{ Namespace, Name string }

// String returns "namespace.name".
func (t TableName) String() string { return t.Namespace + "." + t.Name }

// path returns the table's path in a data tree: "tables/<ns>/<name>".
func (t TableName) path() string { return "tables/" + t.Namespace + "/" + t.Name }

// Validate reports whether both parts are legal names.
func (t TableName) Validate() error {
	if err := ValidateName(t.Namespace); err != nil {
		return fmt.Errorf("namespace of table %q: %w", t.String(), err)
	}
	if err := ValidateName(t.Name); err != nil {
		return fmt.Errorf("table %q: %w", t.String(), err)
	}
	return nil
}

// ParseTableName parses "namespace.name".
func ParseTableName(s string) (TableName, error) {
	ns, name, ok := strings.Cut(s, ".")
	if !ok {
		return TableName{}, fmt.Errorf("%w %q: want <namespace>.<table>", ErrBadName, s)
	}
	t := TableName{Namespace: ns, Name: name}
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
