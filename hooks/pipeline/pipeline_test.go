package pipeline

import (
	"strings"
	"testing"
)

func TestHeaderParse(t *testing.T) {
	h, err := ParseHeader("m.py", []byte("#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n\n#weir:inputs=a.b , c\n# weir : outputs = x.y\n# weir: inputs = d.e\n\nimport os # weir: not a header\n"), "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tablesStr(h.Inputs), ","); got != "a.b,d.e,main.c" {
		t.Fatalf("inputs %s", got)
	}
	if got := strings.Join(tablesStr(h.Outputs), ","); got != "x.y" {
		t.Fatalf("outputs %s", got)
	}
	if h.Lines["d.e"] != 6 {
		t.Fatalf("line of d.e = %d", h.Lines["d.e"])
	}
}
