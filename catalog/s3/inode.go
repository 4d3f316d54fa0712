package s3

import (
	"io/fs"
	"syscall"
)

var unixENOTDIR = syscall.ENOTDIR

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
