package pipeline

import (
	"bytes"
	"regexp"
	"sort"
	"strings"
)

// Header is what a Python model declares in its header.
//
// The header is the run of lines at the top of the file that are blank or
// start with '#' (a shebang and an encoding line included). In it, lines of
// the form
//
//	# weir: inputs = clean.orders, raw.customers
//	# weir: outputs = clean.revenue
//
// declare the tables the script reads and writes. Keys are "inputs" and
// "outputs"; a key may repeat and its lists add up; a list is comma
// separated; an unqualified name takes the pipeline's namespace. At least
// one output is required; inputs may be empty ("# weir: inputs =").
//
//	# weir: runtime = pandas
//
// names the runtime the model runs in (once, one name): it beats
// weir.toml's default runtime; weir.toml's [node."<file>"] runtime, if
// set too, must name the same one.
// A "# weir:" line after the header, an unknown key or a bad table name is
// an error naming the line.
type Header struct {
	Inputs  []Table
	Outputs []Table
	// Runtime is the runtime the header names ("" if none).
	Runtime string
	// Lines maps each declared table to the line that names it.
	Lines map[Table]int
}

var directiveRE = regexp.MustCompile(`^#\s*weir\s*:\s*([A-Za-z_]+)\s*=(.*)$`)

// ParseHeader parses the header of a Python model. file is used in
// problems only; defaultNS qualifies bare table names.
func ParseHeader(file string, src []byte, defaultNS string) (Header, error) {
	h := Header{Lines: map[Table]int{}}
	var perr Error
	inHeader := true
	seen := map[Table]string{}
	lines := bytes.Split(src, []byte("\n"))
	for i, raw := range lines {
		lineNo := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(string(raw), "\r"))
		isComment := strings.HasPrefix(line, "#")
		if inHeader && line != "" && !isComment {
			inHeader = false
		}
		if !isComment {
			continue
		}
		body := strings.TrimSpace(strings.TrimPrefix(line, "#"))
		if !strings.HasPrefix(body, "weir:") && !strings.HasPrefix(body, "weir :") {
			continue
		}
		if !inHeader {
			perr.add(file, lineNo, "\"# weir:\" declaration after the header (declarations must come before the first line of code)")
			continue
		}
		m := directiveRE.FindStringSubmatch(line)
		if m == nil {
			perr.add(file, lineNo, "bad declaration %q (want \"# weir: inputs = ns.a, ns.b\" or \"# weir: outputs = ns.c\")", clip(line, 80))
			continue
		}
		key := strings.ToLower(m[1])
		var dst *[]Table
		switch key {
		case "inputs":
			dst = &h.Inputs
		case "outputs":
			dst = &h.Outputs
		case "runtime":
			name := strings.Trim(strings.TrimSpace(m[2]), `"`)
			switch {
			case h.Runtime != "":
				perr.add(file, lineNo, "runtime declared twice (already %q)", h.Runtime)
			case !ValidRuntime(name):
				perr.add(file, lineNo, "runtime %q is not a runtime name (want \"# weir: runtime = pandas\": lower case letters, digits, '_', '.', '-')", clip(name, 40))
			default:
				h.Runtime = name
			}
			continue
		default:
			perr.add(file, lineNo, "unknown key %q (want inputs, outputs or runtime)", m[1])
			continue
		}
		val := strings.TrimSpace(m[2])
		if val == "" {
			continue
		}
		for _, part := range strings.Split(val, ",") {
			t, err := ParseTable(part, defaultNS)
			if err != nil {
				perr.add(file, lineNo, "%v", err)
				continue
			}
			if prev, dup := seen[t]; dup {
				perr.add(file, lineNo, "%s declared twice (already in %s)", t, prev)
				continue
			}
			seen[t] = key
			h.Lines[t] = lineNo
			*dst = append(*dst, t)
		}
	}
	if len(h.Outputs) == 0 && len(perr.Problems) == 0 {
		perr.add(file, 1, "no outputs declared: add a header line \"# weir: outputs = %s.<table>\"", defaultNS)
	}
	sortTables(h.Inputs)
	sortTables(h.Outputs)
	if err := perr.err(); err != nil {
		return h, err
	}
	return h, nil
}

var runtimeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ValidRuntime says whether name can name a runtime.
func ValidRuntime(name string) bool { return runtimeRE.MatchString(name) }

func sortTables(ts []Table) { sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] }) }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
