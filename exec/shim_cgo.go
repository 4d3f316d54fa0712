package exec

// The in-sandbox shim, in C so that it runs from an ELF constructor before
// the Go runtime starts (the same trick libcontainer's nsenter uses): a
// node's start then costs one small exec instead of booting the whole weir
// binary a second time. It reads the seccomp program the server compiled
// once (mounted read-only at seccompPath), sets no_new_privs, loads the
// filter, drops every descriptor above 2 (but the report pipe, which it
// moves to ReportFD) and execs the node's argv with exactly the node's
// environment. The Go shim in init.go is the fallback for a libc that does
// not pass argv to constructors.

/*
#cgo CFLAGS: -Wall -O2
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WEIR_EXEC_ARG "__weir-sandbox-exec"
#define WEIR_SECCOMP_PATH "/weir/bin/.seccomp"
#define WEIR_MAX_INSNS 4096
#define WEIR_REPORT_FD 3 // ReportFD in exec.go

static void weir_shim_die(const char *what, const char *arg) {
	int e = errno;
	dprintf(2, "weir sandbox: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(e));
	_exit(127);
}

__attribute__((constructor)) static void weir_shim(int argc, char **argv, char **envp) {
	static struct sock_filter insns[WEIR_MAX_INSNS];
	(void)envp;
	if (argc < 6 || argv == NULL || strcmp(argv[1], WEIR_EXEC_ARG) != 0 || strcmp(argv[4], "--") != 0)
		return;
	// argv[3]: the descriptor of the report pipe, or "-". It becomes
	// WEIR_REPORT_FD (inheritable); every other one above 2 is closed.
	unsigned int keep = 3;
	if (strcmp(argv[3], "-") != 0) {
		char *end = NULL;
		long rfd = strtol(argv[3], &end, 10);
		if (end == argv[3] || *end != '\0' || rfd < WEIR_REPORT_FD || rfd > 1023) {
			errno = EBADF;
			weir_shim_die("bad report descriptor", argv[3]);
		}
		if (rfd != WEIR_REPORT_FD && dup2((int)rfd, WEIR_REPORT_FD) < 0)
			weir_shim_die("dup2 report descriptor", argv[3]);
		if (rfd == WEIR_REPORT_FD && fcntl(WEIR_REPORT_FD, F_SETFD, 0) < 0)
			weir_shim_die("report descriptor", argv[3]);
		keep = WEIR_REPORT_FD + 1;
	}
#ifdef SYS_close_range
	syscall(SYS_close_range, keep, ~0U, 0U);
#endif
	int fd = open(WEIR_SECCOMP_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		weir_shim_die("open", WEIR_SECCOMP_PATH);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, (char *)insns + got, sizeof(insns) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			weir_shim_die("read", WEIR_SECCOMP_PATH);
		if (n == 0)
			break;
		got += n;
		if (got == sizeof(insns))
			break;
	}
	close(fd);
	if (got == 0 || got % sizeof(struct sock_filter) != 0) {
		errno = EINVAL;
		weir_shim_die("bad seccomp program", WEIR_SECCOMP_PATH);
	}
	struct sock_fprog prog = { .len = got / sizeof(struct sock_filter), .filter = insns };
	if (argv[2][0] != '1')
		unsetenv("HOME");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		weir_shim_die("no_new_privs", NULL);
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		weir_shim_die("seccomp", NULL);
	execvp(argv[5], &argv[5]);
	if (errno == ENOENT) {
		dprintf(2, "weir sandbox: %s: command not found\n", argv[5]);
		_exit(127);
	}
	weir_shim_die("exec", argv[5]);
}

// weir_init_trampoline runs before every other constructor (priority 101;
// nsenter's nsexec and C++ static initialisers run later) in a binary
// re-executed by libcontainer as "init". When the server passed a small
// init binary (a sealed memfd of weir-sandbox-init) as the container's
// first extra file, fd 3, it execs that instead, so the container's init
// never boots the large weir binary. fd 3 stays open for libcontainer, as
// an extra file it hands to the node (the shim closes it before the node
// runs). If fd 3 is not an executable file, or is this very binary, or the
// exec fails, the current binary carries on as init.
__attribute__((constructor(101))) static void weir_init_trampoline(int argc, char **argv, char **envp) {
	struct stat fdst, self;
	if (argc < 2 || argv == NULL || strcmp(argv[1], "init") != 0 || getenv("_LIBCONTAINER_INITPIPE") == NULL)
		return;
	if (fstat(3, &fdst) != 0 || !S_ISREG(fdst.st_mode) || (fdst.st_mode & S_IXUSR) == 0)
		return;
	if (stat("/proc/self/exe", &self) == 0 && self.st_dev == fdst.st_dev && self.st_ino == fdst.st_ino)
		return;
	fexecve(3, argv, envp);
}
*/
import "C"
