package pipeline

import (
	"path"
	"sort"
	"strings"
)

// Limits on what Parse accepts from a push.
const (
	MaxNodes       = 1000     // nodes in one pipeline
	MaxCodeBytes   = 1 << 20  // one model, expectation or weir.toml
	MaxSeedBytes   = 64 << 20 // one seed CSV
	maxTotalSource = 256 << 20
)

// Dirs that make a commit a pipeline.
const (
	ModelsDir       = "models"
	SeedsDir        = "seeds"
	ExpectationsDir = "expectations"
)

// IsPipelinePath reports whether a path in a commit is part of the
// pipeline definition (and so must be handed to Parse).
func IsPipelinePath(p string) bool {
	if p == ConfigFile {
		return true
	}
	top, _, _ := strings.Cut(p, "/")
	return top == ModelsDir || top == SeedsDir || top == ExpectationsDir
}

// ignorable reports whether a file inside a pipeline dir is documentation
// rather than a node.
func ignorable(p string) bool {
	base := path.Base(p)
	ext := path.Ext(base)
	return strings.HasPrefix(base, ".") || ext == ".md" || ext == ".txt" || strings.HasPrefix(strings.ToUpper(base), "README")
}

// Parse reads the pipeline out of a commit's files, given as path ->
// content for every path IsPipelinePath accepts. It checks what can be
// checked without the branch's tables or a SQL parser: names, headers,
// weir.toml. Plan does the rest.
func Parse(files map[string][]byte) (*Pipeline, error) {
	var perr Error
	p := &Pipeline{}
	if src, ok := files[ConfigFile]; ok {
		if len(src) > MaxCodeBytes {
			perr.add(ConfigFile, 0, "file is larger than %d bytes", MaxCodeBytes)
			p.Config.Namespace = "main"
		} else {
			p.Config = parseConfig(src, &perr)
		}
	} else {
		p.Config.Namespace = "main"
	}
	ns := p.Config.Namespace

	paths := make([]string, 0, len(files))
	for f := range files {
		if f != ConfigFile {
			paths = append(paths, f)
		}
	}
	sort.Strings(paths)
	total := 0
	for _, f := range paths {
		src := files[f]
		total += len(src)
		if !IsPipelinePath(f) || ignorable(f) {
			continue
		}
		parts := strings.Split(f, "/")
		dir, ext := parts[0], path.Ext(f)
		stem := strings.TrimSuffix(parts[len(parts)-1], ext)
		fileNS := ns
		switch len(parts) {
		case 2:
		case 3:
			if dir == ExpectationsDir {
				perr.add(f, 0, "expectations must be directly in expectations/ (expectations/<name>.sql)")
				continue
			}
			fileNS = parts[1]
			if !ValidIdent(fileNS) {
				perr.add(f, 0, "namespace directory %q is not a valid name (lower case letters, digits and _)", fileNS)
				continue
			}
		default:
			perr.add(f, 0, "too deeply nested: use %s/<name>%s or %s/<namespace>/<name>%s", dir, ext, dir, ext)
			continue
		}
		if !ValidIdent(stem) {
			perr.add(f, 0, "file name %q is not a valid table name (lower case letters, digits and _, not starting with a digit)", stem)
			continue
		}
		limit := MaxCodeBytes
		if dir == SeedsDir {
			limit = MaxSeedBytes
		}
		if len(src) > limit {
			perr.add(f, 0, "file is larger than %d bytes", limit)
			continue
		}
		n := &Node{File: f, Source: src}
		headerRuntime := ""
		switch {
		case dir == SeedsDir && ext == ".csv":
			n.Kind = KindSeed
			n.Outputs = []Table{Table(fileNS + "." + stem)}
		case dir == ModelsDir && ext == ".sql":
			n.Kind = KindSQL
			n.Outputs = []Table{Table(fileNS + "." + stem)}
		case dir == ModelsDir && ext == ".py":
			n.Kind = KindPython
			h, err := ParseHeader(f, src, fileNS)
			if err != nil {
				perr.Problems = append(perr.Problems, err.(*Error).Problems...)
				continue
			}
			n.Inputs, n.Outputs = h.Inputs, h.Outputs
			n.inputLines = h.Lines
			headerRuntime = h.Runtime
		case dir == ExpectationsDir && ext == ".sql":
			n.Kind = KindExpectation
			n.Name = "expect " + stem
		default:
			perr.add(f, 0, "unknown kind of file (want seeds/*.csv, models/*.sql, models/*.py or expectations/*.sql)")
			continue
		}
		if n.Name == "" {
			n.Name = string(n.Outputs[0])
		}
		if n.Kind == KindSQL || n.Kind == KindExpectation {
			n.Inputs = nil // filled by Plan from the query
		}
		p.Config.apply(n)
		if headerRuntime != "" {
			if nr := p.Config.nodeRuntime(n); nr != "" && nr != headerRuntime {
				perr.add(f, 0, "the header says runtime %q, weir.toml's [node.%q] says %q: keep one", headerRuntime, f, nr)
				continue
			}
			n.Runtime = headerRuntime
		}
		p.Nodes = append(p.Nodes, n)
	}
	if total > maxTotalSource {
		perr.add("", 0, "pipeline files add up to more than %d bytes", maxTotalSource)
	}
	if len(p.Nodes) > MaxNodes {
		perr.add("", 0, "pipeline has %d nodes, more than the limit of %d", len(p.Nodes), MaxNodes)
	}
	for _, k := range p.Config.unusedNodeKeys(p.Nodes) {
		perr.add(ConfigFile, 0, "[node.%q] matches no file or table of the pipeline", k)
	}
	if err := perr.err(); err != nil {
		return nil, err
	}
	return p, nil
}
