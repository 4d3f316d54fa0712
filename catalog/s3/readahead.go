package s3

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Read-ahead of the range a GetObject is about to send.
//
// A GetObject goes out with sendfile, which reads the file through a
// 64 KiB pipe: on a cold file the kernel's read-ahead starts small at the
// range's first byte and grows window by window, waiting on the device
// at each step, while a reader of the same bytes with one large pread
// (an engine reading a row group from local disk) gets the whole range
// asked of the device at once. So before sending, the endpoint tells the
// kernel the whole range will be needed (posix_fadvise WILLNEED), which
// starts the device reads for all of it and returns; sendfile then finds
// pages arriving or already there. Pages already cached are skipped, so
// a warm read pays a page-cache lookup per page and nothing else.
const (
	// maxHint bounds the bytes one request asks the device for ahead
	// of sending: a client that asks for a range and goes away costs
	// at most this much reading. Past it, the kernel's own read-ahead
	// follows the stream as usual.
	maxHint = 64 << 20
	// hintChunk is one WILLNEED call: the kernel caps one call at the
	// larger of the device's optimal IO size and the file's read-ahead
	// window (both can be as small as 128 KiB), so a range is hinted in
	// pieces no call truncates on common devices.
	hintChunk = 1 << 20
)

// willNeed asks the kernel to start reading [off, off+n) of f, at most
// maxHint bytes of it. It is a hint: errors are ignored.
func willNeed(f *os.File, off, n int64) {
	n = min(n, maxHint)
	fd := int(f.Fd())
	for end := off + n; off < end; off += hintChunk {
		if unix.Fadvise(fd, off, min(hintChunk, end-off), unix.FADV_WILLNEED) != nil {
			return
		}
	}
}

// hintRange returns the bytes a GET with this Range header will send
// from a file of size bytes: the one range of "bytes=a-b", "bytes=a-" or
// "bytes=-n", or the whole file without a header. ok is false for
// anything else (several ranges, a malformed header), which is then
// served without a hint: http.ServeContent alone decides what is sent.
func hintRange(h string, size int64) (off, n int64, ok bool) {
	if h == "" {
		return 0, size, size > 0
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	if a == "" { // the last b bytes
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last <= 0 {
			return 0, 0, false
		}
		last = min(last, size)
		return size - last, last, last > 0
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || first >= size {
		return 0, 0, false
	}
	end := size - 1
	if b != "" {
		e, err := strconv.ParseInt(b, 10, 64)
		if err != nil || e < first {
			return 0, 0, false
		}
		end = min(e, end)
	}
	return first, end - first + 1, true
}
