package exec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCollectTree checks collectTree on host dirs, without a sandbox: what
// it refuses (and then copies nothing of) and what it copies.
func TestCollectTree(t *testing.T) {
	write := func(t *testing.T, p string, n int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("x", n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		make  func(t *testing.T, src string)
		limit int64
		want  string // in the *badOutputError; "" = copied
	}{
		{"files and dirs", func(t *testing.T, src string) {
			write(t, filepath.Join(src, "a", "b", "x"), 10)
			write(t, filepath.Join(src, "y"), 20)
		}, 30, ""},
		{"sizes over the limit", func(t *testing.T, src string) {
			write(t, filepath.Join(src, "a"), 20)
			write(t, filepath.Join(src, "b"), 20)
		}, 30, "/out holds files of more than the 30 bytes output limit in all"},
		{"sparse", func(t *testing.T, src string) {
			write(t, filepath.Join(src, "a"), 1)
			if err := os.Truncate(filepath.Join(src, "a"), 1<<40); err != nil {
				t.Fatal(err)
			}
		}, 1 << 50, "/out/a is a sparse file (1024 GiB apparent size"},
		{"hard link", func(t *testing.T, src string) {
			write(t, filepath.Join(src, "a"), 1)
			if err := os.Link(filepath.Join(src, "a"), filepath.Join(src, "b")); err != nil {
				t.Fatal(err)
			}
		}, 100, "/out/a has 2 hard links"},
		{"symlink to a dir", func(t *testing.T, src string) {
			if err := os.Symlink("/etc", filepath.Join(src, "etc")); err != nil {
				t.Fatal(err)
			}
		}, 100, "/out/etc is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			tc.make(t, src)
			err := collectTree(src, dst, tc.limit)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b, err := os.ReadFile(filepath.Join(dst, "a", "b", "x")); err != nil || len(b) != 10 {
					t.Fatalf("a/b/x: %q %v", b, err)
				}
				return
			}
			var bad *badOutputError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(dst); len(ents) != 0 {
				t.Errorf("refused tree copied: %v", ents)
			}
		})
	}
}
