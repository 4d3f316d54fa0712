package exec

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside a sandbox: everything that mounts,
// changes namespaces, traces, loads kernel code, touches keys, clocks, swap
// or accounting, or reaches kernel interfaces a data step never needs.
var deniedSyscalls = []uintptr{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK,
	unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE, unix.SYS_MOUNT_SETATTR,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_KCMP,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_CREATE_MODULE, unix.SYS_GET_KERNEL_SYMS, unix.SYS_QUERY_MODULE,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT, unix.SYS_ACCT,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_MODIFY_LDT,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_QUOTACTL, unix.SYS_LOOKUP_DCOOKIE, unix.SYS_SYSLOG, unix.SYS_VHANGUP,
	unix.SYS_USELIB, unix.SYS__SYSCTL, unix.SYS_NFSSERVCTL,
	unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
}

// nsCloneFlags are the clone(2) flags that create namespaces; clone with
// any of them fails with EPERM (unshare by another name).
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
	unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// seccompFilter is the classic BPF program, built once per process:
//
//	arch != x86_64            -> kill process (no int 0x80 side door)
//	nr >= 0x40000000 (x32)    -> EPERM
//	nr in deniedSyscalls      -> EPERM
//	clone3                    -> ENOSYS (libc falls back to clone, whose flags we can see)
//	clone with nsCloneFlags   -> EPERM
//	anything else             -> allow
var seccompFilter = buildSeccompFilter()

func buildSeccompFilter() []unix.SockFilter {
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
	)
	// Labels are resolved after layout: -1 allow, -2 eperm, -3 enosys.
	type ins struct {
		code   uint16
		jt, jf int // 0 = next; negative = label
		k      uint32
	}
	var p []ins
	p = append(p,
		ins{code: ldW, k: 4},
		ins{code: jeq, k: unix.AUDIT_ARCH_X86_64, jt: 1},
		ins{code: ret, k: unix.SECCOMP_RET_KILL_PROCESS},
		ins{code: ldW, k: 0},
		ins{code: jge, k: 0x40000000, jt: -2},
	)
	for _, nr := range deniedSyscalls {
		p = append(p, ins{code: jeq, k: uint32(nr), jt: -2})
	}
	p = append(p,
		ins{code: jeq, k: unix.SYS_CLONE3, jt: -3},
		ins{code: jeq, k: unix.SYS_CLONE, jf: -1},
		ins{code: ldW, k: 16}, // args[0], low 32 bits (little endian)
		ins{code: jset, k: nsCloneFlags, jt: -2, jf: -1},
	)
	allow := len(p)
	eperm := allow + 1
	enosys := allow + 2
	p = append(p,
		ins{code: ret, k: unix.SECCOMP_RET_ALLOW},
		ins{code: ret, k: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		ins{code: ret, k: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
	)
	target := func(i, j int) uint8 {
		var t int
		switch j {
		case -1:
			t = allow
		case -2:
			t = eperm
		case -3:
			t = enosys
		default:
			t = i + 1 + j
		}
		off := t - (i + 1)
		if off < 0 || off > 255 {
			panic("exec: seccomp jump out of range")
		}
		return uint8(off)
	}
	out := make([]unix.SockFilter, len(p))
	for i, in := range p {
		out[i] = unix.SockFilter{Code: in.code, K: in.k}
		if in.code&0x07 == unix.BPF_JMP {
			out[i].Jt = target(i, in.jt)
			out[i].Jf = target(i, in.jf)
		}
	}
	return out
}

// seccompProgram is seccompFilter as the kernel's struct sock_filter
// array (8 bytes per instruction, native byte order), the form the C shim
// loads.
func seccompProgram() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&seccompFilter[0])), len(seccompFilter)*int(unsafe.Sizeof(seccompFilter[0])))
}

// installSeccomp loads seccompFilter on every thread of the calling
// process. no_new_privs must already be set (libcontainer sets it).
func installSeccomp() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(seccompFilter)), Filter: &seccompFilter[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return errno
	}
	return nil
}
