package image

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInputsHash: the hash covers what goes into a runtime and nothing
// else: package order and duplicates, the mirror and the name do not
// change it; a package, the suite, a wheel's bytes and the index do.
func TestInputsHash(t *testing.T) {
	wheels := t.TempDir()
	os.WriteFile(filepath.Join(wheels, "a-1.0-py3-none-any.whl"), []byte("one"), 0o644)
	hash := func(r Request) string {
		t.Helper()
		in, err := r.inputs()
		if err != nil {
			t.Fatal(err)
		}
		return in.Hash()
	}
	base := hash(Request{Name: "pandas", Debian: []string{"python3-pandas", "python3-numpy"}})
	for name, r := range map[string]Request{
		"order":     {Name: "pandas", Debian: []string{"python3-numpy", "python3-pandas", "python3-numpy"}},
		"python3":   {Name: "pandas", Debian: []string{"python3-numpy", "python3", "python3-pandas"}},
		"name":      {Name: "other", Debian: []string{"python3-numpy", "python3-pandas"}},
		"mirror":    {Name: "pandas", Mirror: "http://mirror.example/debian", Debian: []string{"python3-numpy", "python3-pandas"}},
		"suite set": {Name: "pandas", Suite: DefaultSuite, Debian: []string{"python3-numpy", "python3-pandas"}},
	} {
		if got := hash(r); got != base {
			t.Errorf("%s changed the hash", name)
		}
	}
	withWheel := hash(Request{Name: "pandas", Debian: []string{"python3-pandas", "python3-numpy"}, Wheels: wheels})
	for name, h := range map[string]string{
		"package": hash(Request{Name: "pandas", Debian: []string{"python3-pandas"}}),
		"suite":   hash(Request{Name: "pandas", Suite: "trixie", Debian: []string{"python3-pandas", "python3-numpy"}}),
		"wheel":   withWheel,
		"index":   hash(Request{Name: "pandas", Debian: []string{"python3-pandas", "python3-numpy"}, Index: "https://pypi.example/simple", Pip: []string{"polars"}}),
	} {
		if h == base {
			t.Errorf("%s did not change the hash", name)
		}
	}
	os.WriteFile(filepath.Join(wheels, "a-1.0-py3-none-any.whl"), []byte("two"), 0o644)
	if hash(Request{Name: "pandas", Debian: []string{"python3-pandas", "python3-numpy"}, Wheels: wheels}) == withWheel {
		t.Error("a wheel's bytes did not change the hash")
	}
}

// TestInputsRefused: hostile or mistaken inputs are refused before
// anything runs, saying what is wrong.
func TestInputsRefused(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		r    Request
		want string
	}{
		{Request{Name: "host"}, `runtime name "host"`},
		{Request{Name: "../x"}, `runtime name "../x"`},
		{Request{Name: "p", Debian: []string{"a;rm -rf /"}}, `"a;rm -rf /" is not a Debian package name`},
		{Request{Name: "p", Suite: "bookworm --x"}, `suite "bookworm --x"`},
		{Request{Name: "p", Pip: []string{"x; y"}}, `"x; y" is not a pip requirement`},
		{Request{Name: "p", Index: "ftp://x", Pip: []string{"x"}}, `--index "ftp://x" is not an http(s) URL`},
		{Request{Name: "p", Index: "https://x/simple"}, `--index needs the packages`},
		{Request{Name: "p", Wheels: empty}, "holds no .whl files"},
		{Request{Name: "p", Wheels: "/no/such/dir"}, "--wheels:"},
	} {
		_, err := tc.r.inputs()
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.r, err, tc.want)
		}
	}
}

// TestStoreRemove: rm forgets a name, deletes the runtime's folder once no
// name is left on it, and refuses a name it does not know.
func TestStoreRemove(t *testing.T) {
	s := Open(t.TempDir())
	for _, h := range []string{"aaaa", "bbbb"} {
		os.MkdirAll(filepath.Join(s.Dir, h, "rootfs", "usr"), 0o755)
		b, _ := json.Marshal(Manifest{Hash: h, Info: Info{Python: "3.11.2"}})
		os.WriteFile(filepath.Join(s.Dir, h, "manifest.json"), b, 0o644)
	}
	if err := s.writeNames(map[string]string{"pandas": "aaaa", "pd": "aaaa", "bare": "bbbb"}); err != nil {
		t.Fatal(err)
	}
	rootfs, err := s.Rootfs()
	if err != nil || len(rootfs) != 3 || rootfs["pd"] != filepath.Join(s.Dir, "aaaa", "rootfs") {
		t.Fatalf("Rootfs: %v %v", rootfs, err)
	}
	if h, err := s.Remove("pd"); err != nil || h != "" {
		t.Fatalf("rm pd: %q %v", h, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "aaaa")); err != nil {
		t.Fatal("rm pd deleted the runtime pandas still names")
	}
	if h, err := s.Remove("pandas"); err != nil || h != "aaaa" {
		t.Fatalf("rm pandas: %q %v", h, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "aaaa")); err == nil {
		t.Fatal("rm pandas left its folder")
	}
	if _, err := s.Remove("pandas"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), `unknown runtime "pandas" (built: bare;`) {
		t.Fatalf("rm pandas again: %v", err)
	}
	es, _ := s.List()
	if len(es) != 1 || es[0].Name != "bare" || es[0].Manifest.Python != "3.11.2" {
		t.Fatalf("List: %+v", es)
	}
}

// TestBuildFailureLeavesNothing: a build that fails (here: a mirror that
// does not exist) leaves no folder and no name, removes what a crashed
// build left, and keeps the names that were there.
func TestBuildFailureLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mmdebstrap's root mode needs root")
	}
	if _, err := osexec.LookPath("mmdebstrap"); err != nil {
		t.Skip("no mmdebstrap (apt-get install mmdebstrap)")
	}
	s := Open(t.TempDir())
	os.MkdirAll(filepath.Join(s.Dir, ".build-crashed", "rootfs", "usr"), 0o755)
	if err := s.writeNames(map[string]string{"old": "aaaa"}); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	_, err := s.Build(context.Background(), Request{Name: "broken", Debian: []string{"python3-numpy"}, Mirror: "file:///nonexistent/debian"}, &log)
	if !errors.Is(err, ErrBuild) {
		t.Fatalf("error %v, want ErrBuild; log:\n%s", err, log.String())
	}
	ents, _ := os.ReadDir(s.Dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != ".lock names.json" {
		t.Errorf("left in the store: %v", left)
	}
	if names, _ := s.names(); len(names) != 1 || names["old"] != "aaaa" {
		t.Errorf("names after a failed build: %v", names)
	}
}
