package pipeline

import (
	"strings"
	"testing"
)

// FuzzParsePipeline feeds arbitrary Python headers and weir.toml files to
// Parse: it must never panic, and what it accepts must be well formed.
func FuzzParsePipeline(f *testing.F) {
	f.Add("# weir: inputs = raw.orders\n# weir: outputs = clean.revenue\n", "namespace = \"clean\"\n")
	f.Add("#!/usr/bin/python3\n# weir: outputs = a, b.c\nimport os\n", "")
	f.Add("# weir: outputs =\n", "[node.\"models/m.py\"]\ntimeout = \"2s\"\nmaterialize = \"append\"\n")
	f.Add("# weir:outputs=x\r\n# weir: inputs = , ,\n", "timeout = 5\n")
	f.Add("#weir:\n#weir :inputs\n", "[node]\nx = 1\n")
	f.Add("\n\n# weir: outputs = a.b.c\n", "namespace = \"Bad\"\n")
	f.Add("# weir: runtime = pandas\n# weir: outputs = x\n", "runtime = \"host\"\n")
	f.Add("# weir: runtime = \"a\"\n# weir: runtime = b\n# weir: outputs = x\n", "[node.\"models/m.py\"]\nruntime = \"c\"\n")
	f.Add("# weir: runtime = ../x, y\n# weir: outputs = x\n", "")
	f.Fuzz(func(t *testing.T, py, toml string) {
		files := map[string][]byte{"models/m.py": []byte(py)}
		if toml != "" {
			files["weir.toml"] = []byte(toml)
		}
		p, err := Parse(files)
		if err != nil {
			if e, ok := err.(*Error); !ok || len(e.Problems) == 0 {
				t.Fatalf("error %T %v is not a *Error with problems", err, err)
			}
			return
		}
		if len(p.Nodes) != 1 {
			t.Fatalf("%d nodes", len(p.Nodes))
		}
		n := p.Nodes[0]
		if len(n.Outputs) == 0 {
			t.Fatal("accepted a model without outputs")
		}
		for _, tb := range append(append([]Table(nil), n.Inputs...), n.Outputs...) {
			if _, err := ParseTable(string(tb), "x"); err != nil || !strings.Contains(string(tb), ".") {
				t.Fatalf("accepted bad table %q", tb)
			}
		}
		if n.Runtime == "" {
			t.Fatal("accepted a model without a runtime")
		}
		if n.Materialize != Replace && n.Materialize != Append {
			t.Fatalf("materialize %q", n.Materialize)
		}
	})
}
