package exec

// The in-sandbox shim, in C so that it runs from an ELF constructor before
// the Go runtime starts (the same trick libcontainer's nsenter uses): a
// node's start then costs one small exec instead of booting the whole weir
// binary a second time. It reads the seccomp program the server compiled
// once (mounted read-only at seccompPath), sets no_new_privs, loads the
// filter, drops every descriptor above 2 (but the report pipe, which it
// moves to ReportFD) and execs the node's argv with exactly the node's
// environment, both read from the spec pipe the server writes once the
// (possibly pooled) sandbox is bound to its node. The Go shim in init.go is the fallback for a libc that does
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
#include <sys/resource.h>
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

static int weir_shim_fd(const char *s) {
	char *end = NULL;
	long fd = strtol(s, &end, 10);
	if (end == s || *end != '\0' || fd < 3 || fd > 1023) {
		errno = EBADF;
		weir_shim_die("bad descriptor", s);
	}
	return (int)fd;
}

// weir_shim: argv is <shim> __weir-sandbox-exec <spec fd> <report fd>. The
// spec pipe brings, once the server has bound the sandbox to its node,
// NUL-terminated strings: options ("r": keep the report pipe as
// WEIR_REPORT_FD; "g": keep stdin, the gate; "-"), the open files limit,
// argc, argv, then the environment.
__attribute__((constructor)) static void weir_shim(int argc, char **argv, char **envp) {
	static struct sock_filter insns[WEIR_MAX_INSNS];
	extern char **environ;
	(void)envp;
	if (argc != 4 || argv == NULL || strcmp(argv[1], WEIR_EXEC_ARG) != 0)
		return;
	int sfd = weir_shim_fd(argv[2]), rfd = weir_shim_fd(argv[3]);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	if (buf == NULL)
		weir_shim_die("malloc", NULL);
	for (;;) {
		if (len == cap) {
			if (cap >= (64u << 20)) {
				errno = E2BIG;
				weir_shim_die("node spec", NULL);
			}
			cap *= 2;
			if ((buf = realloc(buf, cap)) == NULL)
				weir_shim_die("malloc", NULL);
		}
		ssize_t n = read(sfd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			weir_shim_die("read node spec", NULL);
		if (n == 0)
			break;
		len += n;
	}
	close(sfd);
	if (len == 0 || buf[len - 1] != '\0') {
		errno = EINVAL;
		weir_shim_die("no node spec", NULL); // the server tore the sandbox down
	}
	size_t nstr = 0;
	for (size_t i = 0; i < len; i++)
		nstr += buf[i] == '\0';
	char **strs = calloc(nstr + 2, sizeof(char *));
	if (strs == NULL)
		weir_shim_die("malloc", NULL);
	for (size_t i = 0, k = 0; i < len; k++) {
		strs[k] = buf + i;
		i += strlen(buf + i) + 1;
	}
	char *end = NULL, *end2 = NULL;
	unsigned long long nofile = nstr >= 4 ? strtoull(strs[1], &end2, 10) : 0;
	long nargs = nstr >= 4 ? strtol(strs[2], &end, 10) : 0;
	if (nstr < 4 || end == strs[2] || *end != '\0' || nargs < 1 || (size_t)nargs > nstr - 3 ||
	    end2 == strs[1] || *end2 != '\0' || nofile < 1) {
		errno = EINVAL;
		weir_shim_die("bad node spec", NULL);
	}
	const char *opts = strs[0];
	char **nargv = calloc(nargs + 1, sizeof(char *));
	char **nenv = calloc(nstr - 3 - nargs + 1, sizeof(char *));
	if (nargv == NULL || nenv == NULL)
		weir_shim_die("malloc", NULL);
	memcpy(nargv, strs + 3, nargs * sizeof(char *));
	memcpy(nenv, strs + 3 + nargs, (nstr - 3 - nargs) * sizeof(char *));
	// The node's open files (soft and hard): only ever a lowering, which
	// needs no privilege.
	struct rlimit rl = { .rlim_cur = nofile, .rlim_max = nofile };
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		weir_shim_die("open files limit", strs[1]);
	// The report pipe becomes WEIR_REPORT_FD (inheritable) if the node
	// asked for it; stdin stays the gate if it did, else /dev/null; every
	// other descriptor above 2 is closed.
	unsigned int keep = 3;
	if (strchr(opts, 'r') != NULL) {
		if (rfd != WEIR_REPORT_FD && dup2(rfd, WEIR_REPORT_FD) < 0)
			weir_shim_die("dup2 report descriptor", argv[3]);
		if (rfd == WEIR_REPORT_FD && fcntl(WEIR_REPORT_FD, F_SETFD, 0) < 0)
			weir_shim_die("report descriptor", argv[3]);
		keep = WEIR_REPORT_FD + 1;
	}
	if (strchr(opts, 'g') == NULL) {
		int nfd = open("/dev/null", O_RDONLY);
		if (nfd < 0)
			weir_shim_die("open", "/dev/null");
		if (nfd != 0) {
			if (dup2(nfd, 0) < 0)
				weir_shim_die("dup2", "/dev/null");
			close(nfd);
		}
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
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		weir_shim_die("no_new_privs", NULL);
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		weir_shim_die("seccomp", NULL);
	// Exactly the node's environment, PATH lookup included.
	environ = nenv;
	execvp(nargv[0], nargv);
	if (errno == ENOENT) {
		dprintf(2, "weir sandbox: %s: command not found\n", nargv[0]);
		_exit(127);
	}
	weir_shim_die("exec", nargv[0]);
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
