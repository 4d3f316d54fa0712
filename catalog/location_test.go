package catalog

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mustPrefix(t testing.TB, root, seg string) prefix {
	t.Helper()
	p, err := parsePrefix(root)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = p.child(seg); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestResolve: the canonicaliser accepts only canonical locations
// strictly under the repo's prefix, and says why it refuses the others.
func TestResolve(t *testing.T) {
	local := mustPrefix(t, "file:///srv/wh", "sales")
	s3 := mustPrefix(t, "s3://lake/wh", "sales")
	const L = "file:///srv/wh/sales"
	for _, c := range []struct {
		p    prefix
		loc  string
		rel  string // "" when refused
		kind error  // ErrBadLocation or ErrOutsideRepo when refused
		why  string // in the message
	}{
		{local, L + "/ns/t", "ns/t", nil, ""},
		{local, L + "/ns/t/metadata/00001-a.metadata.json", "ns/t/metadata/00001-a.metadata.json", nil, ""},
		{local, L + "/ns/t/data/name=a b/x.parquet", "ns/t/data/name=a b/x.parquet", nil, ""},
		{local, L + "/ns/t/data/ünï.parquet", "ns/t/data/ünï.parquet", nil, ""},
		{s3, "s3://lake/wh/sales/ns/t/data/x.parquet", "ns/t/data/x.parquet", nil, ""},

		{local, L + "/%2e%2e/other/x", "", ErrBadLocation, "decode to"},
		{local, L + "/%2E%2E/other/x", "", ErrBadLocation, "percent-escapes"},
		{local, L + "/.%2e/other/x", "", ErrBadLocation, "percent-escapes"},
		{local, L + "/%252e%252e/other/x", "", ErrBadLocation, "double percent-encoding"},
		{local, L + "/ns%2f..%2fx", "", ErrBadLocation, "percent-escapes"},
		{local, L + "/ns%2ft", "", ErrBadLocation, "percent-escapes"},
		{local, L + "/ns/t%", "", ErrBadLocation, "not a valid percent-escape"},
		{local, L + "/ns/t%zz", "", ErrBadLocation, "not a valid percent-escape"},
		{local, L + "/../other/x", "", ErrBadLocation, `".." path segment`},
		{local, L + "/ns/./t", "", ErrBadLocation, `"." path segment`},
		{local, L + "/ns//t", "", ErrBadLocation, "empty path segment"},
		{local, L + "/ns/t/", "", ErrBadLocation, "empty path segment"},
		{local, L + `/ns\..\..\x`, "", ErrBadLocation, "backslash"},
		{local, L + "/ns/t\x00x", "", ErrBadLocation, "control character"},
		{local, L + "/ns/t\nx", "", ErrBadLocation, "control character"},
		{local, L + "/ns/t\u0085x", "", ErrBadLocation, "control character"},
		{local, L + "/ns/t\xffx", "", ErrBadLocation, "UTF-8"},
		{local, L + "/ns/t?x=1", "", ErrBadLocation, "query or fragment"},
		{local, L + "/ns/t#x", "", ErrBadLocation, "query or fragment"},
		{local, "FILE:///srv/wh/sales/ns/t", "", ErrBadLocation, "lower case"},
		{local, "file:/srv/wh/sales/ns/t", "", ErrBadLocation, "scheme://host/path"},
		{local, "file://evil/srv/wh/sales/ns/t", "", ErrBadLocation, "no host"},
		{local, "file://localhost/srv/wh/sales/ns/t", "", ErrBadLocation, "no host"},
		{local, "/srv/wh/sales/ns/t", "", ErrBadLocation, "scheme://host/path"},
		{local, "srv/wh/sales/ns/t", "", ErrBadLocation, "scheme://host/path"},
		{local, "", "", ErrBadLocation, "scheme://host/path"},
		{local, "file://", "", ErrBadLocation, "no path"},
		{local, "http://srv/wh/sales/ns/t", "", ErrBadLocation, "scheme"},
		{local, "s3://lake/wh/sales/ns/t", "", ErrOutsideRepo, "file:///"},
		{local, L, "", ErrOutsideRepo, ""},
		{local, "file:///srv/wh", "", ErrOutsideRepo, ""},
		{local, "file:///srv/wh/sales2/ns/t", "", ErrOutsideRepo, ""},
		{local, "file:///srv/wh/sale/ns/t", "", ErrOutsideRepo, ""},
		{local, "file:///srv/wh/other/ns/t", "", ErrOutsideRepo, ""},
		{local, "file:///etc/shadow", "", ErrOutsideRepo, ""},
		{local, "file:///srv/whx/sales/ns/t", "", ErrOutsideRepo, ""},
		{local, "file:///srv/wh/Sales/ns/t", "", ErrOutsideRepo, ""},
		{local, L + "/" + strings.Repeat("a", MaxLocationLen), "", ErrBadLocation, "longer than"},
		{s3, "s3://other-bucket/wh/sales/ns/t", "", ErrOutsideRepo, "s3://lake/"},
		{s3, "s3a://lake/wh/sales/ns/t", "", ErrBadLocation, "scheme"},
		{s3, "S3://lake/wh/sales/ns/t", "", ErrBadLocation, "lower case"},
		{s3, "s3:///wh/sales/ns/t", "", ErrBadLocation, "no bucket"},
		{s3, "s3://lake/wh/sales2/ns/t", "", ErrOutsideRepo, ""},
		{s3, "s3://lake/wh/sales", "", ErrOutsideRepo, ""},
		{s3, "s3://lake/wh/sales/%2e%2e/x", "", ErrBadLocation, "percent-escapes"},
	} {
		rel, err := c.p.resolve(c.loc)
		switch {
		case c.kind == nil && (err != nil || rel != c.rel):
			t.Errorf("resolve(%q) = %q, %v; want %q", c.loc, rel, err, c.rel)
		case c.kind != nil && (err == nil || !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.why)):
			t.Errorf("resolve(%q) = %q, %v; want %v saying %q", c.loc, rel, err, c.kind, c.why)
		case c.kind != nil && strings.Contains(err.Error(), "/srv/wh") && !strings.Contains(c.loc, "/srv/wh"):
			t.Errorf("resolve(%q): the error shows the warehouse's root: %v", c.loc, err)
		}
	}
}

// TestPrefixSegments: warehouse roots and repo segments that cannot be a
// canonical prefix are refused when the warehouse or area is made.
func TestPrefixSegments(t *testing.T) {
	for _, root := range []string{"file:///srv/w%20h", "file:///srv//wh", "file:///srv/../wh", "file:///srv/wh/", "file://host/wh", "s3://"} {
		if _, err := parsePrefix(root); err == nil {
			t.Errorf("parsePrefix(%q) accepted", root)
		}
	}
	p, err := parsePrefix("file:///srv/wh")
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range []string{"", ".", "..", "a/b", `a\b`, "a%2e"} {
		if _, err := p.child(seg); err == nil {
			t.Errorf("child(%q) accepted", seg)
		}
	}
	if _, err := NewLocalWarehouse(filepath.Join(t.TempDir(), "w%41h")); err == nil {
		t.Error("a warehouse folder with '%' in its name was accepted")
	}
}

// TestLocalAreaConfinement: a repo's area reaches nothing outside its
// folder, whatever the location or the symlinks planted in the folder:
// not another repo's folder, not the rest of the machine.
func TestLocalAreaConfinement(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wh, err := NewLocalWarehouse(filepath.Join(dir, "warehouse"))
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(dir, "outside")
	other := filepath.Join(dir, "warehouse", "other")
	sales := filepath.Join(dir, "warehouse", "sales")
	for _, d := range []string{outside, filepath.Join(other, "ns"), filepath.Join(sales, "ns", "real")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret.parquet")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "ns", "x.parquet"), []byte("other's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sales, "ns", "real", "x.parquet"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"ns/abs.parquet":    secret,                     // absolute, out of the machine's warehouse
		"ns/outdir":         outside,                    // a folder out of the warehouse
		"ns/rel.parquet":    "../../other/ns/x.parquet", // relative, into another repo
		"ns/otherdir":       "../../other/ns",           // a folder of another repo
		"ns/inside.parquet": "real/x.parquet",           // stays inside: allowed
		"ns/insidedir":      "real",                     // stays inside: allowed
	} {
		if err := os.Symlink(target, filepath.Join(sales, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	a, err := wh.Area("sales")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := a.IO(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loc := func(rel string) string { return a.Prefix() + "/" + rel }
	src := filepath.Join(dir, "src.parquet")
	if err := os.WriteFile(src, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := func() map[string][]string {
		return map[string][]string{"outside": fileList(t, outside), "other": fileList(t, other)}
	}()

	for _, rel := range []string{"ns/abs.parquet", "ns/outdir/secret.parquet", "ns/rel.parquet", "ns/otherdir/x.parquet"} {
		if f, err := fs.Open(loc(rel)); err == nil {
			f.Close()
			t.Errorf("Open(%s) through a symlink out of the area succeeded", rel)
		}
		if _, err := a.Local(ctx, loc(rel)); err == nil {
			t.Errorf("Local(%s) through a symlink out of the area succeeded", rel)
		}
	}
	for _, rel := range []string{"ns/outdir/new.json", "ns/otherdir/new.json", "ns/abs.parquet"} {
		if err := fs.(interface{ WriteFile(string, []byte) error }).WriteFile(loc(rel), []byte("x")); err == nil {
			t.Errorf("WriteFile(%s) through a symlink out of the area succeeded", rel)
		}
		if rel == "ns/abs.parquet" {
			continue // Upload and Remove replace or remove the link itself, not its target
		}
		if err := a.Upload(ctx, src, loc(rel)); err == nil {
			t.Errorf("Upload(%s) through a symlink out of the area succeeded", rel)
		}
		if err := fs.Remove(loc(rel)); err == nil {
			t.Errorf("Remove(%s) through a symlink out of the area succeeded", rel)
		}
	}
	for _, l := range []string{
		"file://" + secret,
		"file://" + filepath.ToSlash(other) + "/ns/x.parquet",
		a.Prefix() + "/../other/ns/x.parquet",
		a.Prefix() + "/%2e%2e/other/ns/x.parquet",
	} {
		if _, err := fs.Open(l); err == nil || !(errors.Is(err, ErrOutsideRepo) || errors.Is(err, ErrBadLocation)) {
			t.Errorf("Open(%s) = %v, want a location error", l, err)
		}
		if _, err := a.Local(ctx, l); err == nil {
			t.Errorf("Local(%s) succeeded", l)
		}
		if err := a.Upload(ctx, src, l); err == nil {
			t.Errorf("Upload(%s) succeeded", l)
		}
	}
	after := map[string][]string{"outside": fileList(t, outside), "other": fileList(t, other)}
	for k := range before {
		if !slices.Equal(before[k], after[k]) {
			t.Errorf("%s changed: %v -> %v", k, before[k], after[k])
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret" {
		t.Errorf("the secret was overwritten: %q", b)
	}

	// Symlinks that stay inside the area are followed, and Local names
	// the real file.
	for _, rel := range []string{"ns/inside.parquet", "ns/insidedir/x.parquet", "ns/real/x.parquet"} {
		p, err := a.Local(ctx, loc(rel))
		if err != nil {
			t.Errorf("Local(%s): %v", rel, err)
			continue
		}
		if want, _ := filepath.EvalSymlinks(filepath.Join(sales, "ns", "real", "x.parquet")); p != want {
			t.Errorf("Local(%s) = %s, want %s", rel, p, want)
		}
	}
	if _, err := a.Local(ctx, loc("ns/real")); err == nil {
		t.Error("Local of a folder succeeded")
	}
	// Writes inside the area work, and errors name files relative to it.
	if err := a.Upload(ctx, src, loc("ns/t/data/u.parquet")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(sales, "ns", "t", "data", "u.parquet")); string(b) != "new" {
		t.Errorf("Upload wrote %q", b)
	}
	_, err = fs.Open(loc("ns/t/data/missing.parquet"))
	if err == nil || strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "ns/t/data/missing.parquet") {
		t.Errorf("Open of a missing file: %v (want the repo-relative name, not %s)", err, dir)
	}
	if got := (&Catalog{wh: wh}).Redact("open " + sales + "/ns/x and " + wh.Root() + "/sales/ns/y"); strings.Contains(got, dir) {
		t.Errorf("Redact left the server path: %q", got)
	}
}

// fileList lists the files and folders under dir (relative, sorted).
func fileList(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// FuzzLocation: whatever the canonicaliser accepts is its own canonical
// form, lies under the repo prefix once percent-decoded and cleaned (as
// iceberg-go's local FileIO and net/url read it), and has no ".", ".." or
// empty segment.
func FuzzLocation(f *testing.F) {
	for _, s := range []string{
		"file:///srv/wh/sales/ns/t", "file:///srv/wh/sales/%2e%2e/other", "file:///srv/wh/sales/.%2e/x",
		"file:///srv/wh/sales/%252e%252e/x", "file:///srv/wh/sales/a%2fb", "file://evil/srv/wh/sales/x",
		"FILE:///srv/wh/sales/x", "file:/srv/wh/sales/x", "s3://lake/wh/sales/x", "s3a://lake/wh/sales/x",
		"s3://other/wh/sales/x", "file:///srv/wh/sales2/x", "file:///srv/wh/sales/x?y#z", "file:///srv/wh/sales/a\\..\\b",
		"file:///srv/wh/sales/a\x00b", "file:///srv/wh/sales/", "file:///srv/wh/sales//x", "file:///srv/wh/sales/./x",
	} {
		f.Add(s, false)
		f.Add(strings.Replace(strings.Replace(s, "file:///srv", "s3://lake", 1), "sales", "sales", 1), true)
	}
	local := mustPrefix(f, "file:///srv/wh", "sales")
	s3 := mustPrefix(f, "s3://lake/wh", "sales")
	f.Fuzz(func(t *testing.T, loc string, onS3 bool) {
		p := local
		if onS3 {
			p = s3
		}
		rel, err := p.resolve(loc)
		if err != nil {
			if !errors.Is(err, ErrBadLocation) && !errors.Is(err, ErrOutsideRepo) {
				t.Fatalf("resolve(%q): untyped error %v", loc, err)
			}
			return
		}
		if p.String()+"/"+rel != loc {
			t.Fatalf("resolve(%q) accepted a non-canonical form (rel %q)", loc, rel)
		}
		for _, s := range strings.Split(rel, "/") {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "%\\?#\x00") {
				t.Fatalf("resolve(%q) = %q: bad segment %q", loc, rel, s)
			}
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("accepted %q does not parse as a URL: %v", loc, err)
		}
		want := "/" + strings.Join(p.segs, "/") + "/"
		if u.Scheme != p.scheme || u.Host != p.host || path.Clean(u.Path) != u.Path || !strings.HasPrefix(u.Path, want) || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("accepted %q reads as %s://%s%s ?%q #%q, not under %s", loc, u.Scheme, u.Host, u.Path, u.RawQuery, u.Fragment, p)
		}
	})
}

// FuzzParsePointer: ParsePointer never panics, and what it accepts is
// the canonical form: it marshals back to the same bytes, and parses to
// the same pointer again.
func FuzzParsePointer(f *testing.F) {
	good := Pointer{Table: TableName{"sales", "orders"}, MetadataLocation: "file:///w/team@demo/sales/orders/metadata/00003-0b7e.metadata.json",
		SnapshotID: 4837261, Schema: "id:long,name:string", Rows: 1204, Files: 3, Bytes: 8821}
	f.Add(good.Marshal())
	good.Run = "r-7f3a"
	f.Add(good.Marshal())
	f.Add([]byte("table a.b\nmetadata-location x\nsnapshot-id 0\nschema \nrows 0\nfiles 0\nbytes 0\n"))
	f.Add([]byte("table ../x\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePointer(data)
		if err != nil {
			if !errors.Is(err, ErrBadPointer) {
				t.Fatalf("ParsePointer: untyped error %v", err)
			}
			return
		}
		if got := p.Marshal(); string(got) != string(data) {
			t.Fatalf("accepted %q marshals to %q", data, got)
		}
		if q, err := ParsePointer(p.Marshal()); err != nil || q != p {
			t.Fatalf("round trip of %q: %+v, %v", data, q, err)
		}
	})
}

// TestS3AreaConfinement: an S3 area touches only keys under its prefix;
// a hostile location is refused before any request is made.
func TestS3AreaConfinement(t *testing.T) {
	ctx := context.Background()
	wh, err := NewS3Warehouse(S3Config{Bucket: "lake", Prefix: "/wh/", Endpoint: "http://127.0.0.1:1", PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := wh.Area("sales")
	if err != nil {
		t.Fatal(err)
	}
	if a.Prefix() != "s3://lake/wh/sales" {
		t.Fatalf("prefix %q", a.Prefix())
	}
	if k, err := a.(*s3Area).key("s3://lake/wh/sales/ns/t/data/x.parquet"); err != nil || k != "wh/sales/ns/t/data/x.parquet" {
		t.Fatalf("key = %q, %v", k, err)
	}
	fs, err := a.IO(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "x")
	os.WriteFile(src, []byte("x"), 0o644)
	for _, l := range []string{
		"s3://lake/wh/sales2/x", "s3://lake/wh/other/x", "s3://other/wh/sales/x", "s3a://lake/wh/sales/x",
		"s3://lake/wh/sales/../other/x", "s3://lake/wh/sales/%2e%2e/other/x", "s3://lake/wh/sales", "file:///etc/shadow",
	} {
		check := func(what string, err error) {
			if !errors.Is(err, ErrBadLocation) && !errors.Is(err, ErrOutsideRepo) {
				t.Errorf("%s(%s) = %v, want a location error", what, l, err)
			}
		}
		_, err := fs.Open(l)
		check("Open", err)
		check("Remove", fs.Remove(l))
		check("WriteFile", fs.(interface{ WriteFile(string, []byte) error }).WriteFile(l, []byte("x")))
		check("Upload", a.Upload(ctx, src, l))
		_, err = a.Local(ctx, l)
		check("Local", err)
	}
}
