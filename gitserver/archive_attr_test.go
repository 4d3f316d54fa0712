package gitserver

import "testing"

// TestWildmatch: git's wildmatch with and without WM_PATHNAME, on the
// patterns .gitattributes use (cases as git's t3070 has them).
func TestWildmatch(t *testing.T) {
	for _, tc := range []struct {
		pat, text string
		pathname  bool
		want      bool
	}{
		{"*.log", "a.log", false, true},
		{"*.log", "a.txt", false, false},
		{"foo/*", "foo/bar", true, true},
		{"foo/*", "foo/bar/baz", true, false},
		{"foo/**", "foo/bar/baz", true, true},
		{"**/baz", "baz", true, true},
		{"**/baz", "foo/bar/baz", true, true},
		{"a/**/b", "a/b", true, true},
		{"a/**/b", "a/x/y/b", true, true},
		{"a/**b", "a/x/b", true, false},
		{"f?o", "foo", true, true},
		{"f?o", "f/o", true, false},
		{"[a-c]x", "bx", true, true},
		{"[!a-c]x", "bx", true, false},
		{"[]]", "]", true, true},
		{"\\*", "*", true, true},
		{"\\*", "x", true, false},
		{"[unclosed", "u", true, false},
		{"top-only.txt", "top-only.txt", true, true},
	} {
		if got := wildmatch(tc.pat, tc.text, tc.pathname); got != tc.want {
			t.Errorf("wildmatch(%q, %q, %v) = %v, want %v", tc.pat, tc.text, tc.pathname, got, tc.want)
		}
	}
}

// TestAttrState: precedence (later line, deeper file), anchoring, base
// names, directory-only patterns, binary's diff.
func TestAttrState(t *testing.T) {
	a := &attrStack{frames: []attrFrame{
		{base: "", rules: parseAttrs("*.log export-ignore\n/top.txt export-ignore\nbuild/ export-ignore\nkeep.log -export-ignore\n\"sp ace.txt\" export-ignore\n!neg export-ignore\n*.bin binary\n")},
		{base: "dir", rules: parseAttrs("# c\nkeep.log export-ignore\nx.txt export-ignore=no\n")},
	}}
	for _, tc := range []struct {
		path  string
		isDir bool
		name  string
		want  attrState
	}{
		{"a.log", false, "export-ignore", attrSet},
		{"dir/a.log", false, "export-ignore", attrSet},
		{"keep.log", false, "export-ignore", attrUnset},
		{"dir/keep.log", false, "export-ignore", attrSet},
		{"top.txt", false, "export-ignore", attrSet},
		{"dir/top.txt", false, "export-ignore", attrUnspecified},
		{"build", true, "export-ignore", attrSet},
		{"build", false, "export-ignore", attrUnspecified},
		{"sp ace.txt", false, "export-ignore", attrSet},
		{"neg", false, "export-ignore", attrUnspecified},
		{"dir/x.txt", false, "export-ignore", attrValue},
		{"a.bin", false, "diff", attrUnset},
	} {
		if got := a.state(tc.path, tc.isDir, tc.name); got != tc.want {
			t.Errorf("state(%q, dir=%v, %s) = %v, want %v", tc.path, tc.isDir, tc.name, got, tc.want)
		}
	}
}
