package refs

import (
	"fmt"
	"strings"
)

// CheckName validates a full ref name like `git check-ref-format` does,
// and additionally requires it to be "HEAD" or to start with "refs/". The
// error wraps ErrBadName and quotes the name.
func CheckName(name Name) error {
	if why := badNameReason(string(name)); why != "" {
		return fmt.Errorf("%w %q: %s", ErrBadName, string(name), why)
	}
	return nil
}

func badNameReason(s string) string {
	if s == "HEAD" {
		return ""
	}
	if !strings.HasPrefix(s, "refs/") {
		return "must be HEAD or start with refs/"
	}
	if len(s) > 1024 {
		return "longer than 1024 bytes"
	}
	if s == "@" {
		return "is \"@\""
	}
	if strings.HasSuffix(s, "/") {
		return "ends with '/'"
	}
	if strings.HasSuffix(s, ".") {
		return "ends with '.'"
	}
	if strings.Contains(s, "..") {
		return "contains \"..\""
	}
	if strings.Contains(s, "@{") {
		return "contains \"@{\""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return "contains a control character"
		}
		switch c {
		case ' ', '~', '^', ':', '?', '*', '[', '\\':
			return fmt.Sprintf("contains %q", c)
		}
	}
	for _, comp := range strings.Split(s, "/") {
		switch {
		case comp == "":
			return "contains an empty component (\"//\")"
		case comp[0] == '.':
			return "a component starts with '.'"
		case comp[0] == '-':
			return "a component starts with '-'"
		case strings.HasSuffix(comp, ".lock"):
			return "a component ends with \".lock\""
		}
	}
	if len(s) == len("refs/") {
		return "has nothing after refs/"
	}
	return ""
}
