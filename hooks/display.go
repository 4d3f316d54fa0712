package hooks

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Neutralise makes text safe to show on the pusher's terminal and in the
// run log: every control or format character but newline and tab (ANSI
// escapes, carriage returns, backspaces, C1 controls, bidi overrides) is
// written out as an escape (\x1b, \u202e), and invalid UTF-8 as \xNN, so
// that what a node prints cannot move the cursor, erase a line or reorder
// text and pass for the server's own progress lines. What is left is
// printable as it stands, and shown after "weir:   | ".
func Neutralise(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (r != '\n' && r != '\t' && !visible(r)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t' || visible(r):
			b.WriteString(s[i : i+size])
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// visible reports whether r shows as itself: printable (a letter, mark,
// number, punctuation, symbol or the ASCII space) or other white space
// that moves nothing but the column.
func visible(r rune) bool {
	return unicode.IsPrint(r) || (unicode.Is(unicode.Zs, r))
}
