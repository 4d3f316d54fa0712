package exec

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Collecting /out. The node is dead when its /out is read (the init's
// exit killed every process of its PID namespace), but what it left there
// is hostile: the tmpfs bounds the blocks a node writes, not the sizes its
// files claim, so a file truncated to 10 GiB costs the node nothing and a
// naive copy fills the holes on the host's disk. So /out is walked twice:
//
//	check   lstat every entry, without following anything; refuse the
//	        lot (*badOutputError, nothing copied) if any entry is not a
//	        dir or a regular file with one link and no holes, if there
//	        are more than MaxOutputEntries of them or a path deeper than
//	        MaxOutputDepth, or if the files' sizes add up to more than the
//	        output limit
//	copy    each checked file, opened without following links and
//	        matched to its checked inode, through a reader bounded by its
//	        checked size and by what is left of the limit
//
// Both sides go through os.Root, so no name can lead outside /out or the
// destination.

// badOutputError is /out holding something the server refuses to copy.
type badOutputError struct {
	path string // relative to /out; "" for the whole tree
	why  string
}

func (e *badOutputError) Error() string {
	p := "/out"
	if e.path != "" {
		p += "/" + e.path
	}
	return fmt.Sprintf("output refused, nothing of /out was kept: %s %s; leave only regular files and directories in /out", p, e.why)
}

// outEntry is one checked entry of /out.
type outEntry struct {
	rel  string // slash-separated, relative to /out
	dir  bool
	size int64
	mode fs.FileMode
	dev  uint64
	ino  uint64
}

// checkTree walks root and returns its entries in walk order (a dir
// before what it holds), or a *badOutputError.
func checkTree(root *os.Root, limit int64) ([]outEntry, error) {
	var (
		entries []outEntry
		total   int64
	)
	err := fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if len(entries) >= MaxOutputEntries {
			return &badOutputError{why: fmt.Sprintf("holds more than %d files and directories", MaxOutputEntries)}
		}
		if depth := strings.Count(rel, "/") + 1; depth > MaxOutputDepth {
			return &badOutputError{path: rel, why: fmt.Sprintf("is %d levels deep, more than %d", depth, MaxOutputDepth)}
		}
		fi, err := root.Lstat(rel)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("lstat %s: no stat_t", rel)
		}
		e := outEntry{rel: rel, mode: fi.Mode(), dev: uint64(st.Dev), ino: st.Ino}
		switch {
		case fi.IsDir():
			e.dir = true
		case fi.Mode().IsRegular():
			if st.Nlink != 1 {
				return &badOutputError{path: rel, why: fmt.Sprintf("has %d hard links", st.Nlink)}
			}
			stored := st.Blocks * 512
			if fi.Size() > stored {
				return &badOutputError{path: rel, why: fmt.Sprintf("is a sparse file (%s apparent size, %s written)", bytesString(fi.Size()), bytesString(stored))}
			}
			e.size = fi.Size()
			total += e.size
			if total > limit {
				return &badOutputError{why: fmt.Sprintf("holds files of more than the %s output limit in all", bytesString(limit))}
			}
		default:
			return &badOutputError{path: rel, why: "is " + fileKind(fi.Mode())}
		}
		entries = append(entries, e)
		return nil
	})
	return entries, err
}

// collectTree copies the dirs and regular files of src to dst (an
// existing, empty dir of the server) once all of src has passed checkTree.
// Permission bits are kept without setuid, setgid or sticky; no more than
// limit bytes are copied in all.
func collectTree(src, dst string, limit int64) error {
	from, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer from.Close()
	entries, err := checkTree(from, limit)
	if err != nil {
		return err
	}
	to, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer to.Close()
	left := limit
	for _, e := range entries {
		if e.dir {
			if err := to.Mkdir(e.rel, 0o755); err != nil {
				return err
			}
			continue
		}
		n, err := copyChecked(from, to, e, left)
		if err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// copyChecked copies the checked regular file e, refusing it if it is no
// longer the inode that was checked or holds more than its checked size,
// and copying at most left bytes.
func copyChecked(from, to *os.Root, e outEntry, left int64) (int64, error) {
	// O_NONBLOCK: a fifo swapped in must not block the open.
	in, err := from.OpenFile(e.rel, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() || uint64(st.Dev) != e.dev || st.Ino != e.ino || fi.Size() != e.size {
		return 0, &badOutputError{path: e.rel, why: "changed while it was collected"}
	}
	if e.size > left {
		return 0, &badOutputError{why: "holds more than the output limit"}
	}
	out, err := to.OpenFile(e.rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.mode.Perm())
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(in, e.size))
	if err == nil {
		// One byte more than checked means it grew: refuse it.
		var one [1]byte
		if m, _ := in.Read(one[:]); m > 0 {
			err = &badOutputError{path: e.rel, why: "grew while it was collected"}
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// fileKind names what a non-regular, non-dir entry is.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a fifo"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file (" + m.String() + ")"
}

// reportReader drains the read end of a node's report pipe (Spec.Report)
// into at most MaxReport bytes, from the start of the sandbox until every
// write end is closed.
type reportReader struct {
	f         *os.File
	done      chan struct{}
	buf       []byte
	truncated bool
}

func newReportReader(f *os.File) *reportReader {
	r := &reportReader{f: f, done: make(chan struct{})}
	go r.drain()
	return r
}

func (r *reportReader) drain() {
	defer close(r.done)
	b := make([]byte, 4096)
	for {
		n, err := r.f.Read(b)
		keep := min(n, MaxReport-len(r.buf))
		r.buf = append(r.buf, b[:keep]...)
		if keep < n {
			r.truncated = true
		}
		if err != nil {
			return
		}
	}
}

// wait waits up to d for the end of the report and returns it; a report
// that did not end in time counts as truncated.
func (r *reportReader) wait(d time.Duration) ([]byte, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.done:
		return r.buf, r.truncated
	case <-t.C:
		r.f.Close()
		<-r.done
		return r.buf, true
	}
}

// close stops the reader and waits for it (after wait too).
func (r *reportReader) close() {
	r.f.Close()
	<-r.done
}
