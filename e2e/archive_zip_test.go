package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// zipDump lists what a user of a zip sees, as Python's zipfile reads it
// (the system Python: pyenv's cannot be assumed to have zipfile's deps):
// the archive comment, then per entry in order its name, DOS date and
// time, creator and extract versions, flag bits, internal and external
// attributes, extra field (git's extended timestamp), CRC, size and the
// extracted bytes' SHA-256. Compressed sizes and the method are left out:
// Go's deflate is not zlib's.
const zipDump = `
import hashlib, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print("comment", z.comment.decode())
for i in z.infolist():
    data = z.read(i)
    print(repr(i.filename), i.date_time, i.create_version, i.extract_version,
          i.flag_bits, i.internal_attr, oct(i.external_attr >> 16), i.external_attr & 0xffff,
          i.extra.hex(), i.CRC, i.file_size, hashlib.sha256(data).hexdigest())
`

func dumpZip(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.zip")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/usr/bin/python3", "-c", zipDump, p).CombinedOutput()
	if err != nil {
		t.Fatalf("read zip: %v\n%s", err, out)
	}
	return string(out)
}

// TestArchiveRemoteZip: git archive --remote --format=zip (and -o x.zip)
// gives what a local git archive gives: with -0 the same bytes; at the
// default level and -9 the same entries, order, names, modes (executable,
// symlink, directories), times, text/binary marks, extra fields, comment
// and extracted bytes. tgz and tar.gz unpack to git's tar byte for byte.
// The tree's .gitattributes export-ignore (top level and nested, base
// name, anchored, directory and ** patterns) leaves the same paths out as
// git does, in every format.
func TestArchiveRemoteZip(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs /usr/bin/python3 (Debian python3) to read zip metadata")
	}
	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 2)
	commitFile(t, work, "dir/sub/deep.txt", strings.Repeat("deep\n", 3000))
	commitFile(t, work, "dir/other.txt", "other\n")
	commitFile(t, work, "tiny", "x")
	commitFile(t, work, "empty", "")
	commitFile(t, work, "bin.dat", "\x00\x01\x02binary")
	commitFile(t, work, "nodiff.txt", "plain text marked -diff\n")
	commitFile(t, work, "ünïcode.txt", "utf-8 name\n")
	long := strings.Repeat("x", 120) + "/" + strings.Repeat("y", 120) + ".txt"
	commitFile(t, work, long, "long path\n")
	// export-ignore material.
	commitFile(t, work, "debug.log", "log\n")
	commitFile(t, work, "dir/sub/trace.log", "nested log\n")
	commitFile(t, work, "top-only.txt", "ignored at the top\n")
	commitFile(t, work, "dir/top-only.txt", "kept below\n")
	commitFile(t, work, "build/out.o", "object\n")
	commitFile(t, work, "docs/a/b.md", "docs\n")
	commitFile(t, work, "dir/hidden.txt", "ignored by dir/.gitattributes\n")
	commitFile(t, work, "dir/.gitattributes", "hidden.txt export-ignore\n")
	commitFile(t, work, ".gitattributes", strings.Join([]string{
		"# comment",
		"*.log export-ignore",
		"/top-only.txt export-ignore",
		"build/ export-ignore",
		"docs/** export-ignore",
		"nodiff.txt -diff",
		"",
	}, "\n"))
	if err := os.WriteFile(filepath.Join(work, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("dir/other.txt", filepath.Join(work, "link")); err != nil {
		t.Fatal(err)
	}
	git(t, work, "add", "run.sh", "link")
	git(t, work, "commit", "-q", "-m", "exec and link")
	url := s.SSHURL("archzip")
	git(t, work, "push", "-q", url, "main")

	// Both sides run on this machine, so the DOS times use one time zone.
	archive := func(remote bool, args ...string) []byte {
		t.Helper()
		if remote {
			args = append([]string{"--remote=" + url}, args...)
		}
		b, errOut, err := gitOut(t, work, append([]string{"archive"}, args...)...)
		if err != nil {
			t.Fatalf("git archive %v: %v\n%s", args, err, errOut)
		}
		return b
	}
	for _, tc := range [][]string{
		{"--format=zip", "-0", "main"},
		{"--format=zip", "-0", "--prefix=pre/", "main"},
		{"--format=zip", "-0", "main", "dir", "run.sh"},
	} {
		local, remote := archive(false, tc...), archive(true, tc...)
		if !bytes.Equal(local, remote) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "local.zip"), local, 0o644)
			os.WriteFile(filepath.Join(dir, "remote.zip"), remote, 0o644)
			t.Fatalf("archive %v: %d bytes remote, %d local (kept in %s)\nlocal:\n%s\nremote:\n%s",
				tc, len(remote), len(local), dir, dumpZip(t, local), dumpZip(t, remote))
		}
	}
	for _, tc := range [][]string{
		{"--format=zip", "main"},
		{"--format=zip", "-9", "--prefix=p/", "main"},
		{"--format=zip", "-1", "main", "dir"},
	} {
		local, remote := dumpZip(t, archive(false, tc...)), dumpZip(t, archive(true, tc...))
		if local != remote {
			t.Fatalf("archive %v differs:\nlocal:\n%s\nremote:\n%s", tc, local, remote)
		}
	}
	dump := dumpZip(t, archive(true, "--format=zip", "main"))
	for _, want := range []string{"comment " + revParse(t, work, "main"), "'run.sh'", "0o100755", "'link'", "0o120777", "'dir/sub/' "} {
		if !strings.Contains(dump, want) {
			t.Fatalf("remote zip lacks %q:\n%s", want, dump)
		}
	}
	for _, gone := range []string{"debug.log", "trace.log", "'top-only.txt'", "build/", "docs/", "hidden.txt"} {
		if strings.Contains(dump, gone) {
			t.Fatalf("remote zip has export-ignore'd %s:\n%s", gone, dump)
		}
	}
	if !strings.Contains(dump, "'dir/top-only.txt'") {
		t.Fatalf("anchored /top-only.txt left out dir/top-only.txt too:\n%s", dump)
	}
	// -o x.zip: the client asks for --format=zip.
	out := filepath.Join(t.TempDir(), "x.zip")
	git(t, work, "archive", "--remote="+url, "-0", "--output="+out, "main")
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, archive(false, "--format=zip", "-0", "main")) {
		t.Fatalf("-o x.zip: %d bytes, %v", len(b), err)
	}
	// tar (export-ignore applied) byte for byte, and tgz/tar.gz gunzip to it.
	tarLocal := archive(false, "main")
	if remote := archive(true, "main"); !bytes.Equal(tarLocal, remote) {
		t.Fatalf("tar with .gitattributes: %d bytes remote, %d local", len(remote), len(tarLocal))
	}
	for _, f := range []string{"--format=tgz", "--format=tar.gz"} {
		zr, err := gzip.NewReader(bytes.NewReader(archive(true, f, "-9", "main")))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(b, tarLocal) {
			t.Fatalf("%s: gunzipped %d bytes (%v), git's tar is %d", f, len(b), err, len(tarLocal))
		}
	}
	// Refusals stay: export-subst is not applied, so it is not claimed;
	// tar takes no level; unknown formats are named.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format=tar", "-9", "main"}, "Argument not supported for format 'tar': -9"},
		{[]string{"--format=rar", "main"}, "Unknown archive format 'rar'"},
		{[]string{"--format=zip", "--add-file=/etc/passwd", "main"}, "not allowed"},
	} {
		b, errOut, err := gitOut(t, work, append([]string{"archive", "--remote=" + url}, tc.args...)...)
		if err == nil || len(b) != 0 || !strings.Contains(errOut, tc.want) {
			t.Fatalf("git archive --remote %v: err %v, %d bytes out:\n%s", tc.args, err, len(b), errOut)
		}
	}
}
