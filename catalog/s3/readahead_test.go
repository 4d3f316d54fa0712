package s3

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestHintRange(t *testing.T) {
	const size = 1000
	for _, c := range []struct {
		h       string
		off, n  int64
		ok      bool
		comment string
	}{
		{"", 0, size, true, "no Range: the whole file"},
		{"bytes=0-99", 0, 100, true, ""},
		{"bytes=100-199", 100, 100, true, ""},
		{"bytes=900-", 900, 100, true, "open end"},
		{"bytes=900-5000", 900, 100, true, "end past the file"},
		{"bytes=-10", 990, 10, true, "suffix"},
		{"bytes=-5000", 0, size, true, "suffix longer than the file"},
		{"bytes= 5-9", 5, 5, true, "space after ="},
		{"bytes=0-0,5-9", 0, 0, false, "several ranges: ServeContent alone"},
		{"bytes=1000-", 0, 0, false, "start at the end: 416, no hint"},
		{"bytes=9-5", 0, 0, false, "end before start"},
		{"bytes=-0", 0, 0, false, ""},
		{"bytes=-", 0, 0, false, ""},
		{"bytes=x-5", 0, 0, false, ""},
		{"bytes=-1-5", 0, 0, false, ""},
		{"bytes=5", 0, 0, false, ""},
		{"items=0-5", 0, 0, false, ""},
		{"bytes=99999999999999999999-", 0, 0, false, "overflow"},
	} {
		off, n, ok := hintRange(c.h, size)
		if ok != c.ok || (ok && (off != c.off || n != c.n)) {
			t.Errorf("hintRange(%q, %d) = %d, %d, %t; want %d, %d, %t (%s)", c.h, size, off, n, ok, c.off, c.n, c.ok, c.comment)
		}
	}
	if _, _, ok := hintRange("", 0); ok {
		t.Error("an empty file got a hint")
	}
}

// resident counts the bytes of f's first n bytes in the page cache.
func resident(t *testing.T, f *os.File, n int) int {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (n+4095)/4096)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	return bytes.Count(vec, []byte{1}) * 4096
}

// TestWillNeedReadsTheWholeRange checks that the hint brings a cold
// range into the page cache whole, past the kernel's cap on one
// WILLNEED call (the larger of the device's IO size and the read-ahead
// window: 8 MiB on a device with read_ahead_kb 8192), and nothing
// past maxHint.
func TestWillNeedReadsTheWholeRange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	const size = maxHint + 8<<20
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Sync()
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	if r := resident(t, f, size); r > size/4 {
		t.Skipf("this filesystem keeps the pages of a file after DONTNEED (%d of %d bytes resident; tmpfs?): nothing to measure", r, size)
	}
	const off = 4096
	willNeed(f, off, size)
	// The reads were started; wait for them (a bounded wait for the
	// device, not a timing assertion).
	want := maxHint
	deadline := time.Now().Add(30 * time.Second)
	for resident(t, f, off+maxHint) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r := resident(t, f, off+maxHint); r < want {
		t.Fatalf("after WILLNEED of %d bytes from %d, %d bytes of them are cached; want all %d", size, off, r, want)
	}
	// Past maxHint nothing was asked for (the kernel's own read-ahead
	// reads only what is read).
	if r := resident(t, f, size) - resident(t, f, off+maxHint); r > 4<<20 {
		t.Errorf("%d bytes past maxHint were read; want none asked for", r)
	}
}
