package gitserver

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"time"
	"unicode/utf8"
)

// git archive --format=zip, laid out as git's archive-zip.c lays it out:
//
//	for each entry:  local header (30 bytes: version 10, flags, method,
//	                 DOS time and date, crc, sizes, name length, extra
//	                 length 9) | name | extended timestamp (0x5455, 5
//	                 bytes: flags 1, mtime) | data (stored or deflated)
//	central directory: one 46-byte header per entry (creator 0x0317 for
//	                 executables and symlinks, else 0; internal attribute
//	                 1 for text; external attribute mode<<16 for
//	                 executables and symlinks, 16 for directories, else 0)
//	                 | name | the same extended timestamp
//	[zip64 end record and locator, past 65535 entries or 4 GiB]
//	end record (22 bytes) | comment: the commit id in hex (none for a tree)
//
// Times are the commit's, in the server's local time zone, as git's
// localtime does. A file is deflated at the level asked (-1..-9; -0
// stores everything) and stored when deflating does not make it smaller.
// Deflate here is Go's compress/flate, not zlib, so deflated bytes differ
// from git's while what unzip extracts does not; with -0 the archive is
// git's byte for byte.

const (
	zipMethodStore   = 0
	zipMethodDeflate = 8
	zipFlagUTF8      = 1 << 11
	zipExtraMtime    = 9 // 0x5455, size 5, flags, mtime
	zipMax32         = 0xffffffff
)

// zipWriter counts what it writes: zip offsets are absolute.
type zipWriter struct {
	w   io.Writer
	off uint64
	err error
}

func (z *zipWriter) write(b []byte) {
	if z.err != nil {
		return
	}
	var n int
	n, z.err = z.w.Write(b)
	z.off += uint64(n)
}

// dosTime is git's dos_time: the local date and time packed as DOS does.
func dosTime(ts int64) (date, tm uint16) {
	t := time.Unix(ts, 0).In(time.Local)
	date = uint16(t.Day() + int(t.Month())*32 + (t.Year()-1980)*512)
	tm = uint16(t.Second()/2 + t.Minute()*32 + t.Hour()*2048)
	return date, tm
}

// isBinary is git's buffer_is_binary: a NUL in the first 8000 bytes.
func isBinary(data []byte) bool {
	if len(data) > 8000 {
		data = data[:8000]
	}
	return bytes.IndexByte(data, 0) >= 0
}

// writeZipArchive writes the archive of at as git archive --format=zip
// does, deflating at level (-1: zlib's default).
func writeZipArchive(w *walker, at *archiveTree, prefix string, paths []string, level int, out io.Writer) error {
	z := &zipWriter{w: out}
	date, tm := dosTime(at.mtime)
	var dir bytes.Buffer
	var entries uint64
	var maxCreator uint16
	le16 := func(b *bytes.Buffer, v uint16) { b.Write(binary.LittleEndian.AppendUint16(nil, v)) }
	le32 := func(b *bytes.Buffer, v uint32) { b.Write(binary.LittleEndian.AppendUint32(nil, v)) }
	le64 := func(b *bytes.Buffer, v uint64) { b.Write(binary.LittleEndian.AppendUint64(nil, v)) }
	var extra bytes.Buffer
	le16(&extra, 0x5455)
	le16(&extra, 5)
	extra.WriteByte(1)
	le32(&extra, uint32(at.mtime))
	var deflated bytes.Buffer
	fw, err := flate.NewWriter(&deflated, level)
	if err != nil {
		return fmt.Errorf("zip: compression level %d: %w", level, err)
	}
	err = walkArchive(w, at, prefix, paths, func(e archiveEntry) error {
		if len(e.path) > 0xffff {
			return fmt.Errorf("path too long (%d chars, SHA1: %s): %.64s...", len(e.path), e.oid, e.path)
		}
		var flags uint16
		for i := 0; i < len(e.path); i++ {
			if e.path[i] >= 0x80 {
				if utf8.ValidString(e.path) {
					flags |= zipFlagUTF8
				}
				break
			}
		}
		offset := z.off
		method := uint16(zipMethodStore)
		var attr2 uint32
		var creator uint16
		var crc uint32
		text := -1 // unknown: directories
		data := []byte(nil)
		size := uint64(0)
		switch e.mode & 0170000 {
		case 0040000, 0160000:
			attr2 = 16
		case 0100000, 0120000:
			switch {
			case e.mode&0170000 == 0120000:
				attr2 = (e.mode | 0777) << 16
				creator = 0x0317
			case e.mode&0111 != 0:
				attr2 = e.mode << 16
				creator = 0x0317
			}
			data, size = e.data, uint64(len(e.data))
			crc = crc32.ChecksumIEEE(data)
			switch {
			case e.diff == attrSet:
				text = 1
			case e.diff == attrUnset || isBinary(data):
				text = 0
			default:
				text = 1
			}
			if e.mode&0170000 == 0100000 && level != 0 && size > 0 {
				deflated.Reset()
				fw.Reset(&deflated)
				if _, err := fw.Write(data); err != nil {
					return err
				}
				if err := fw.Close(); err != nil {
					return err
				}
				if uint64(deflated.Len()) < size {
					method, data = zipMethodDeflate, deflated.Bytes()
				}
			}
		default:
			return fmt.Errorf("unsupported file mode: 0%o (SHA1: %s)", e.mode, e.oid)
		}
		maxCreator = max(maxCreator, creator)
		csize := uint64(len(data))
		zip64 := size > zipMax32 || csize > zipMax32
		version := uint16(10)
		if zip64 {
			version = 45
		}
		var h bytes.Buffer
		le32(&h, 0x04034b50)
		le16(&h, version)
		le16(&h, flags)
		le16(&h, method)
		le16(&h, tm)
		le16(&h, date)
		le32(&h, crc)
		extraLen := uint16(zipExtraMtime)
		if zip64 {
			le32(&h, zipMax32)
			le32(&h, zipMax32)
			extraLen += 20
		} else {
			le32(&h, uint32(csize))
			le32(&h, uint32(size))
		}
		le16(&h, uint16(len(e.path)))
		le16(&h, extraLen)
		h.WriteString(e.path)
		h.Write(extra.Bytes())
		if zip64 {
			le16(&h, 0x0001)
			le16(&h, 16)
			le64(&h, size)
			le64(&h, csize)
		}
		z.write(h.Bytes())
		z.write(data)
		if z.err != nil {
			return z.err
		}

		var z64 bytes.Buffer
		if size >= zipMax32 {
			le64(&z64, size)
		}
		if csize >= zipMax32 {
			le64(&z64, csize)
		}
		if offset >= zipMax32 {
			le64(&z64, offset)
		}
		dirExtra := uint16(zipExtraMtime)
		if z64.Len() > 0 {
			dirExtra += uint16(4 + z64.Len())
		}
		le32(&dir, 0x02014b50)
		le16(&dir, creator)
		le16(&dir, version)
		le16(&dir, flags)
		le16(&dir, method)
		le16(&dir, tm)
		le16(&dir, date)
		le32(&dir, crc)
		le32(&dir, uint32(min(csize, zipMax32)))
		le32(&dir, uint32(min(size, zipMax32)))
		le16(&dir, uint16(len(e.path)))
		le16(&dir, dirExtra)
		le16(&dir, 0) // comment
		le16(&dir, 0) // disk
		le16(&dir, uint16(max(text, 0)))
		le32(&dir, attr2)
		le32(&dir, uint32(min(offset, zipMax32)))
		dir.WriteString(e.path)
		dir.Write(extra.Bytes())
		if z64.Len() > 0 {
			le16(&dir, 0x0001)
			le16(&dir, uint16(z64.Len()))
			dir.Write(z64.Bytes())
		}
		entries++
		return nil
	})
	if err != nil {
		return err
	}
	dirStart := z.off
	z.write(dir.Bytes())
	var t bytes.Buffer
	if entries > 0xffff || dirStart > zipMax32 {
		le32(&t, 0x06064b50)
		le64(&t, 44)
		le16(&t, maxCreator)
		le16(&t, 45)
		le32(&t, 0)
		le32(&t, 0)
		le64(&t, entries)
		le64(&t, entries)
		le64(&t, uint64(dir.Len()))
		le64(&t, dirStart)
		le32(&t, 0x07064b50)
		le32(&t, 0)
		le64(&t, dirStart+uint64(dir.Len()))
		le32(&t, 1)
	}
	le32(&t, 0x06054b50)
	le16(&t, 0)
	le16(&t, 0)
	le16(&t, uint16(min(entries, 0xffff)))
	le16(&t, uint16(min(entries, 0xffff)))
	le32(&t, uint32(dir.Len()))
	le32(&t, uint32(min(dirStart, zipMax32)))
	if at.commit.IsZero() {
		le16(&t, 0)
	} else {
		le16(&t, 40)
		t.WriteString(at.commit.String())
	}
	z.write(t.Bytes())
	return z.err
}
