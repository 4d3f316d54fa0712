package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuery(t *testing.T) {
	ctx := context.Background()
	d, f := stage(t, "orders.csv", "id,who\n1,ann\n2,bob\n3,a\tb\n")
	if _, err := Seed(ctx, &Job{Dirs: d, Source: f, Outputs: []string{"raw.orders"}}); err != nil {
		t.Fatal(err)
	}
	tables := map[string][]string{"raw.orders": {d.OutputFile("raw.orders")}}
	var out bytes.Buffer
	if err := Query(ctx, tables, "SELECT id, who FROM raw.orders ORDER BY id;", &out, QueryOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "id\twho\n1\tann\n2\tbob\n3\ta\\tb\n"; out.String() != want {
		t.Fatalf("got %q want %q", out.String(), want)
	}
	out.Reset()
	if err := Query(ctx, tables, "SELECT id FROM raw.orders ORDER BY id", &out, QueryOptions{MaxRows: 2}); err != nil {
		t.Fatal(err)
	}
	if want := "id\n1\n2\n(more than 2 rows; add a LIMIT)\n"; out.String() != want {
		t.Fatalf("got %q want %q", out.String(), want)
	}
	secret := filepath.Join(t.TempDir(), "s.csv")
	os.WriteFile(secret, []byte("x\n1\n"), 0o644)
	for _, q := range []string{
		"COPY raw.orders TO '" + d.OutputFile("raw.orders") + "'",
		"SELECT * FROM read_csv('" + secret + "')",
		"SELECT * FROM '" + secret + "'",
		"SELECT 1; SELECT 2",
		"ATTACH '" + secret + "' AS x",
		"SET enable_external_access=true",
	} {
		if err := Query(ctx, tables, q, &out, QueryOptions{}); err == nil {
			t.Errorf("%s: ran", q)
		} else if strings.Contains(q, "COPY") && !strings.Contains(err.Error(), "SELECT") && !strings.Contains(err.Error(), "parse") {
			t.Logf("%s: %v", q, err)
		}
	}
	if err := Query(ctx, tables, "SELECT count(*) FROM raw.orders", &out, QueryOptions{}); err != nil {
		t.Fatal(err)
	}
}
