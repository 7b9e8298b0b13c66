/*
 * libnsdebug: start a program inside another process's namespaces.
 *
 * Process tree of one session (see ../shared/DESIGN.md):
 *
 *   agent (Node, multithreaded)
 *    └─ supervisor       forked here and re-executed as nsdebug-supervisor (this file built with
 *        │               NSD_SUPERVISOR_MAIN): joins the session cgroup, then the target's
 *        │               namespaces; waits for the session, reports its exit code.
 *        └─ session init forked again (a PID namespace applies only to children): the session's
 *            │           subreaper inside the target, so processes orphaned by the session are
 *            │           reparented to it, not to the container's PID 1 (which may never reap
 *            │           them); it kills and reaps them all when the command ends.
 *            └─ command  the shell or argv.
 *
 * Everything between fork and exec is async-signal-safe: the agent is multithreaded, so the
 * children may only use syscalls (no malloc, no stdio) until they exec or _exit. Forks use
 * _Fork(), which skips pthread_atfork handlers: libuv's would close and reopen its signal pipe
 * in the child, taking fd numbers the child has since given to its own pipes.
 */
#define _GNU_SOURCE
#include "libnsdebug.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h> /* PIPE_BUF */
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h> /* renameat */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define EXPORT __attribute__((visibility("default")))

/* One message from a child to its parent: the failed step and errno, or a note. */
/* How long nsd_spawn waits for the supervisor's report: generous for emulated nodes. */
#define SPAWN_REPORT_TIMEOUT_MS 30000

struct report {
	int32_t step;
	int32_t error;
	int32_t flags;
};

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* In a child: tell the parent which step failed, and exit. */
static void __attribute__((noreturn)) fail(int fd, int32_t step, int err, int status)
{
	struct report r = { .step = step, .error = err, .flags = 0 };
	(void)write_all(fd, &r, sizeof(r));
	_exit(status);
}

/* Close every fd from 3 up except those in keep[] (sorted ascending, all >= 3). */
static void close_fds_except(const int *keep, int n)
{
	unsigned int lo = 3;
	for (int i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned int)keep[i] < lo)
			continue;
		if ((unsigned int)keep[i] > lo)
			syscall(SYS_close_range, lo, (unsigned int)keep[i] - 1, 0);
		lo = (unsigned int)keep[i] + 1;
	}
	syscall(SYS_close_range, lo, ~0U, 0);
}

/* "/proc/<pid>/<name>" without snprintf, which is not async-signal-safe. */
static void proc_path(char *buf, size_t size, int32_t pid, const char *name)
{
	char digits[16];
	int n = 0;
	do
		digits[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) > 0 && n < (int)sizeof(digits));
	size_t len = 0;
	const char *prefix = "/proc/";
	while (*prefix && len + 1 < size)
		buf[len++] = *prefix++;
	while (n > 0 && len + 1 < size)
		buf[len++] = digits[--n];
	if (len + 1 < size)
		buf[len++] = '/';
	while (*name && len + 1 < size)
		buf[len++] = *name++;
	buf[len] = '\0';
}

/* Concatenate NULL-terminated parts into buf (no stdio before exec); -1 if they do not fit. */
static int concat(char *buf, size_t size, const char *const *parts)
{
	size_t len = 0;
	for (; *parts; parts++)
		for (const char *p = *parts; *p; p++) {
			if (len + 1 >= size)
				return -1;
			buf[len++] = *p;
		}
	buf[len] = '\0';
	return 0;
}

static void sort_fds(int *fds, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];
			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
}

/* The value of NAME in a NULL-terminated envp, or NULL. */
static const char *env_get(const char *const *envp, const char *name)
{
	size_t len = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

/* execvpe without malloc: search argv[0] in the PATH of envp. Returns only on failure (-errno). */
static int exec_in_path(const char *const *argv, const char *const *envp)
{
	char path[4096];
	const char *file = argv[0];
	int err = ENOENT;

	if (strchr(file, '/')) {
		execve(file, (char *const *)argv, (char *const *)envp);
		return -errno;
	}
	const char *search = env_get(envp, "PATH");
	if (!search)
		search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	size_t flen = strlen(file);
	for (const char *dir = search;; dir++) {
		const char *end = strchrnul(dir, ':');
		size_t dlen = (size_t)(end - dir);
		if (dlen + 1 + flen + 1 <= sizeof(path)) {
			memcpy(path, dir, dlen);
			path[dlen] = '/';
			memcpy(path + (dlen ? dlen + 1 : 0), file, flen + 1);
			execve(path, (char *const *)argv, (char *const *)envp);
			/* Like execvp: keep searching past missing files, remember a permission error. */
			if (errno == EACCES)
				err = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR)
				return -errno;
		}
		if (*end == '\0')
			break;
		dir = end;
	}
	return -err;
}

static void reset_signals(void)
{
	sigset_t none;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	/* Node ignores SIGPIPE and SIGXFSZ and blocks others; exec keeps both, so undo them. */
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Make fd the new process's fd `to`, inheritable and blocking. */
static int install_stdio(int fd, int to)
{
	if (fd != to && dup2(fd, to) < 0)
		return -errno;
	/* dup2 onto itself keeps FD_CLOEXEC, which Node sets on 0-2: clear it explicitly. */
	if (fcntl(to, F_SETFD, 0) < 0)
		return -errno;
	int fl = fcntl(to, F_GETFL);
	if (fl < 0 || fcntl(to, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

#define CAP_BIT(cap) (1ULL << (cap))

/* capset(2) of all three sets (64 bits each, _LINUX_CAPABILITY_VERSION_3). */
static int set_caps(uint64_t permitted, uint64_t effective, uint64_t inheritable)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)effective, (uint32_t)permitted, (uint32_t)inheritable },
		{ (uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), (uint32_t)(inheritable >> 32) },
	};
	return syscall(SYS_capset, &header, data) < 0 ? -errno : 0;
}

static int get_caps(uint64_t *permitted, uint64_t *effective)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &header, data) < 0)
		return -errno;
	*permitted = (uint64_t)data[1].permitted << 32 | data[0].permitted;
	*effective = (uint64_t)data[1].effective << 32 | data[0].effective;
	return 0;
}

/* Drop every capability not in keep from the bounding set (needs CAP_SETPCAP). 0 or -errno. */
static int drop_bounding(uint64_t keep)
{
	for (int cap = 0; cap < 64; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (in < 0 && errno == EINVAL)
			return 0; /* past the kernel's last capability */
		if (in < 0 || (in == 1 && !(keep & CAP_BIT(cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0))
			return -errno;
	}
	return 0;
}

/*
 * Take the target's confinement, right before exec (as runc's setns init and bubblewrap do):
 * afterwards this process has the target's credentials, capability sets, no_new_privs, seccomp
 * filters and LSM label, and nothing of the agent's. Every step fails the session, never
 * skipped: a session is never less confined than the process it enters. read_only: no_new_privs
 * even where the target lacks it. proc_fd: the agent's /proc (opened before joining), for the
 * LSM label.
 */
static void apply_confinement(const struct nsd_confinement *c, int read_only, int proc_fd, int report_fd)
{
	uint64_t permitted = 0, effective = 0;
	const int no_new_privs = c->no_new_privs || read_only;

	if (!c->enabled)
		return;
	/*
	 * The label takes effect at exec; our own /proc, whatever the target's /proc is (masked,
	 * read-only). Written before no_new_privs, under which AppArmor refuses some transitions.
	 */
	if (c->lsm_exec) {
		int fd = openat(proc_fd, "thread-self/attr/exec", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write_all(fd, c->lsm_exec, strlen(c->lsm_exec)) < 0)
			fail(report_fd, NSD_STEP_LSM_LABEL, errno, 126);
		close(fd);
	}
	/* The inheritable set first: capset may only raise it within the bounding set, dropped next. */
	if (get_caps(&permitted, &effective) < 0 || set_caps(permitted, effective, c->cap_inheritable) < 0)
		fail(report_fd, NSD_STEP_SET_CAPS, errno, 126);
	/* The bounding set before setuid: dropping from it needs CAP_SETPCAP, which setuid takes away. */
	if (drop_bounding(c->cap_bounding) < 0)
		fail(report_fd, NSD_STEP_DROP_BOUNDING, errno, 126);
	/* Groups and GIDs while we are still root: both need CAP_SETGID. */
	if (c->ngroups >= 0 && setgroups((size_t)c->ngroups, (const gid_t *)c->groups) < 0)
		fail(report_fd, NSD_STEP_SET_GROUPS, errno, 126);
	if (setresgid(c->gid[0], c->gid[1], c->gid[2]) < 0)
		fail(report_fd, NSD_STEP_SET_GID, errno, 126);
	/* Keepcaps: setresuid away from root would clear the permitted set we still have to hand on. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setresuid(c->uid[0], c->uid[1], c->uid[2]) < 0)
		fail(report_fd, NSD_STEP_SET_UID, errno, 126);
	/* A change of effective UID/GID clears the parent-death signal: the session must still die with us. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		fail(report_fd, NSD_STEP_PDEATHSIG, errno, 126);
	/*
	 * Installing a seccomp filter needs no_new_privs or CAP_SYS_ADMIN: without the former we keep
	 * CAP_SYS_ADMIN until the filters are in, then drop it (the one syscall run under them).
	 */
	uint64_t borrowed = c->seccomp_filters > 0 && !no_new_privs ? CAP_BIT(CAP_SYS_ADMIN) & ~c->cap_effective : 0;
	if (set_caps(c->cap_permitted | borrowed, c->cap_effective | borrowed, c->cap_inheritable) < 0)
		fail(report_fd, NSD_STEP_SET_CAPS, errno, 126);
	/* Ambient capabilities: each must already be permitted and inheritable (both set above). */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		fail(report_fd, NSD_STEP_AMBIENT_CAPS, errno, 126);
	for (int cap = 0; cap < 64; cap++)
		if ((c->cap_ambient & CAP_BIT(cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			fail(report_fd, NSD_STEP_AMBIENT_CAPS, errno, 126);
	if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(report_fd, NSD_STEP_NO_NEW_PRIVS, errno, 126);
	/*
	 * Seccomp last: every syscall above would otherwise be filtered by the target's rules. The
	 * kernel runs the newest filter first and the strictest verdict wins, so installing the
	 * target's filters oldest first rebuilds its stack exactly.
	 */
	const struct sock_filter *insns = (const struct sock_filter *)c->seccomp_program;
	for (int i = 0; i < c->seccomp_filters; i++) {
		int32_t len = c->seccomp_lengths[i];
		if (len <= 0 || len > BPF_MAXINSNS)
			fail(report_fd, NSD_STEP_SECCOMP, EINVAL, 126);
		struct sock_fprog prog = { .len = (unsigned short)len, .filter = (struct sock_filter *)insns };
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			fail(report_fd, NSD_STEP_SECCOMP, errno, 126);
		insns += len;
	}
	if (borrowed && set_caps(c->cap_permitted, c->cap_effective, c->cap_inheritable) < 0)
		fail(report_fd, NSD_STEP_SET_CAPS, errno, 126);
	/* PR_SET_KEEPCAPS needs no undoing: execve clears it. */
}

/* The command: runs in the target's PID namespace as its own session leader. Never returns. */
static void __attribute__((noreturn))
run_command(const struct nsd_spawn_request *req, int slave_fd, int proc_fd, int report_fd)
{
	static const char *const shells[] = { "/bin/bash", "/bin/sh" };

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		fail(report_fd, NSD_STEP_PDEATHSIG, errno, 126);
	if (setsid() < 0)
		fail(report_fd, NSD_STEP_SETSID, errno, 126);
	if (slave_fd >= 0) {
		if (ioctl(slave_fd, TIOCSCTTY, 0) < 0)
			fail(report_fd, NSD_STEP_CONTROLLING_TTY, errno, 126);
		/* The terminal belongs to the user the session becomes, as a login's does. */
		if (req->confinement.enabled && fchown(slave_fd, req->confinement.uid[1], (gid_t)-1) < 0)
			fail(report_fd, NSD_STEP_CONTROLLING_TTY, errno, 126);
		for (int i = 0; i < 3; i++)
			if (install_stdio(slave_fd, i) < 0)
				fail(report_fd, NSD_STEP_STDIO, errno, 126);
	} else {
		/* Move the sources out of 0-2 first so one dup2 cannot clobber another's source. */
		int src[3];
		for (int i = 0; i < 3; i++) {
			src[i] = fcntl(req->stdio_fds[i], F_DUPFD_CLOEXEC, 3);
			if (src[i] < 0)
				fail(report_fd, NSD_STEP_STDIO, errno, 126);
		}
		for (int i = 0; i < 3; i++)
			if (install_stdio(src[i], i) < 0)
				fail(report_fd, NSD_STEP_STDIO, errno, 126);
	}
	/* Read-only sessions also may not gain privileges (setuid binaries, file capabilities); confined ones set it with the rest. */
	if (req->read_only && !req->confinement.enabled && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(report_fd, NSD_STEP_READ_ONLY, errno, 126);
	/* Everything else closes on exec; the toolbox fd too (execveat still runs it). */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	reset_signals();
	apply_confinement(&req->confinement, req->read_only, proc_fd, report_fd);

	const char *const *envp = req->envp;
	if (req->mode == NSD_EXEC_COMMAND) {
		int err = exec_in_path(req->argv, envp);
		fail(report_fd, NSD_STEP_EXEC, -err, err == -ENOENT ? 127 : 126);
	}
	if (req->mode == NSD_EXEC_SHELL) {
		for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
			const char *const argv[] = { shells[i], NULL };
			execve(shells[i], (char *const *)argv, (char *const *)envp);
			if (errno != ENOENT && errno != ENOTDIR)
				fail(report_fd, NSD_STEP_EXEC, errno, 126);
		}
		if (req->toolbox_fd < 0)
			fail(report_fd, NSD_STEP_EXEC, ENOENT, 127);
		struct report note = { .step = NSD_STEP_NONE, .error = 0, .flags = NSD_USED_TOOLBOX };
		(void)write_all(report_fd, &note, sizeof(note));
		const char *const argv[] = { "sh", NULL };
		syscall(SYS_execveat, req->toolbox_fd, "", argv, envp, AT_EMPTY_PATH);
		fail(report_fd, NSD_STEP_EXEC, errno, 126);
	}
	syscall(SYS_execveat, req->toolbox_fd, "", req->argv, envp, AT_EMPTY_PATH);
	fail(report_fd, NSD_STEP_EXEC, errno, 126);
}

/* Parse the next decimal number in a cgroup.procs text, without strtol (not async-signal-safe). */
static const char *next_pid(const char *p, long *pid)
{
	while (*p && (*p < '0' || *p > '9'))
		p++;
	*pid = 0;
	while (*p >= '0' && *p <= '9')
		*pid = *pid * 10 + (*p++ - '0');
	return p;
}

/*
 * Kill every other process of the session and reap them. As their subreaper we inherit the ones
 * whose parents die first, so repeat until the session cgroup holds nobody else. cgroup.procs
 * shows PIDs of our namespace; the supervisor shows as 0 from inside a container's, and as our
 * parent when the session shares its PID namespace (node sessions): it is never ours to kill.
 */
static void reap_session(const struct nsd_spawn_request *req, pid_t command)
{
	const struct timespec pause = { .tv_sec = 0, .tv_nsec = 1000000 };
	const pid_t supervisor = getppid();
	char buf[8192];
	for (int round = 0; round < 5000; round++) {
		int others = 0;
		ssize_t n = req->cgroup_procs_fd >= 0 ? pread(req->cgroup_procs_fd, buf, sizeof(buf) - 1, 0) : -1;
		if (n >= 0) {
			buf[n] = '\0';
			long pid;
			for (const char *p = next_pid(buf, &pid); pid != 0 || *p; p = next_pid(p, &pid))
				if (pid > 0 && pid != getpid() && pid != supervisor && kill((pid_t)pid, SIGKILL) == 0)
					others++;
		} else if (kill(-command, SIGKILL) == 0) {
			/* No session cgroup: the command's process group is the best we can name. */
			others++;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!others)
			return;
		nanosleep(&pause, NULL);
	}
}

/* Where this process's argv lives, from /proc/self/stat fields 48-49, for rename_cmdline(). */
struct cmdline_area {
	char *start;
	size_t len;
};

static struct cmdline_area find_cmdline_area(void)
{
	struct cmdline_area area = { NULL, 0 };
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return area;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return area;
	buf[n] = '\0';
	/* comm may hold anything: fields are counted from its closing parenthesis (field 2). */
	const char *p = strrchr(buf, ')');
	if (!p)
		return area;
	/* Then field 3, the state letter, and numbers (signs do not matter for counting). */
	p += 2;
	if (*p)
		p++;
	long field = 3, value = 0, start = 0;
	while (*p && field < 49) {
		p = next_pid(p, &value);
		field++;
		if (field == 48)
			start = value;
	}
	if (field == 49 && start > 0 && value > start) {
		area.start = (char *)start;
		area.len = (size_t)(value - start);
	}
	return area;
}

/*
 * Show the session init as "nsdebug-init" in the container's ps, not as the agent's whole
 * command line. The argv memory is ours after fork (copy-on-write), so overwrite it in place;
 * PR_SET_MM would need CAP_SYS_RESOURCE.
 */
static void rename_cmdline(struct cmdline_area area)
{
	static const char name[] = "nsdebug-init";
	if (!area.start || area.len < sizeof(name))
		return;
	memset(area.start, 0, area.len);
	memcpy(area.start, name, sizeof(name) - 1);
	(void)prctl(PR_SET_NAME, name);
}

static int mount_session_proc(void);

/* The session's init in the target's PID namespace. Exits with the command's code. */
static void __attribute__((noreturn))
session_init(const struct nsd_spawn_request *req, const sigset_t *waited, struct cmdline_area cmdline,
	     int slave_fd, int proc_fd, int report_fd)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		fail(report_fd, NSD_STEP_PDEATHSIG, errno, 126);
	/* We keep the agent's privileges inside the target: not dumpable, so the same UID cannot ptrace us. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail(report_fd, NSD_STEP_PDEATHSIG, errno, 126);
	/* Post-mortem: we are PID 1 of the session's own PID namespace; its /proc is ours to mount. */
	if (req->rootfs && mount_session_proc() < 0)
		fail(report_fd, NSD_STEP_PM_PROC, errno, 126);
	rename_cmdline(cmdline);
	pid_t command = _Fork();
	if (command < 0)
		fail(report_fd, NSD_STEP_FORK_COMMAND, errno, 126);
	if (command == 0)
		run_command(req, slave_fd, proc_fd, report_fd);
	/*
	 * A confined command runs: this init, the one process of the session still privileged inside
	 * the target, keeps only what ending the session takes (CAP_KILL, the cgroup's procs file),
	 * so a process of the target that may ptrace it (CAP_SYS_PTRACE) finds nothing of the agent's.
	 */
	if (req->confinement.enabled) {
		if (drop_bounding(CAP_BIT(CAP_KILL)) < 0 || set_caps(CAP_BIT(CAP_KILL), CAP_BIT(CAP_KILL), 0) < 0)
			fail(report_fd, NSD_STEP_CONFINE_INIT, errno, 126);
		int keep[] = { report_fd, req->cgroup_procs_fd };
		sort_fds(keep, 2);
		close_fds_except(keep, 2);
		for (int fd = 0; fd < 3; fd++)
			if (fd != report_fd && fd != req->cgroup_procs_fd)
				close(fd);
		slave_fd = proc_fd = -1;
	}
	close(report_fd);
	if (proc_fd >= 0)
		close(proc_fd);
	if (slave_fd >= 0)
		close(slave_fd);

	/* Until the command ends, or the supervisor ends the session (then: as if killed). */
	int status = W_EXITCODE(0, SIGKILL);
	for (;;) {
		int sig = sigwaitinfo(waited, NULL);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD)
			break;
		int st, ended = 0;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0)
			if (w == command) {
				status = st;
				ended = 1;
			}
		if (ended)
			break;
	}
	reap_session(req, command);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* Kill every process of the session: the whole cgroup at once, else the command's group. */
static void kill_session(const struct nsd_spawn_request *req, pid_t command)
{
	if (req->cgroup_kill_fd >= 0 && write_all(req->cgroup_kill_fd, "1", 1) == 0)
		return;
	if (command > 0)
		(void)kill(-command, SIGKILL);
}

/* Send the first report (and the pty master) to the agent. */
static int send_report(int sock, const struct report *r, int fd)
{
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)r, .iov_len = sizeof(*r) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(control, 0, sizeof(control));
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/*
 * Swap the target's mount tree for a private copy of it, recursively read-only: the session
 * observes the container without changing a byte, and the container's own mounts stay as they
 * were. unshare(CLONE_NEWNS) copies the tree (root and cwd move to the copies); slave
 * propagation keeps our changes from reaching the original; MOUNT_ATTR_RDONLY is per mount.
 */
static void make_read_only_copy(int sock)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
	char cwd[4096];
	/* The copy's root is our chroot's directory as a path: fds opened earlier name the original. */
	if (!getcwd(cwd, sizeof(cwd)))
		fail(sock, NSD_STEP_READ_ONLY, errno, 1);
	if (unshare(CLONE_NEWNS) < 0)
		fail(sock, NSD_STEP_READ_ONLY, errno, 1);
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		fail(sock, NSD_STEP_READ_ONLY, errno, 1);
	if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		fail(sock, NSD_STEP_READ_ONLY, errno, 1);
	if (chdir(cwd) < 0 && chdir("/") < 0)
		fail(sock, NSD_STEP_READ_ONLY, errno, 1);
}

/* mkdir that accepts an existing directory. */
static int ensure_dir(const char *path, mode_t mode)
{
	return mkdir(path, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* Where the post-mortem root is assembled: a tmpfs over /tmp in our private mount namespace. */
#define PM_SCRATCH "/tmp"
#define PM_ROOT PM_SCRATCH "/root"
#define PM_DEVICES PM_SCRATCH "/devices"

/* Length of the directory prefix (through its last '/') shared by every colon-separated path. */
static size_t common_parent(const char *paths)
{
	size_t len = 0;
	for (size_t i = 0; paths[i] && paths[i] != ':'; i++)
		if (paths[i] == '/')
			len = i + 1;
	for (const char *p = strchr(paths, ':'); p && len; p = strchr(p, ':')) {
		p++;
		size_t same = 0;
		while (same < len && p[same] == paths[same])
			same++;
		if (same < len)
			for (len = same; len > 0 && paths[len - 1] != '/';)
				len--;
	}
	return len;
}

/* Bind the device node src (in the scratch device tmpfs) onto an empty file created at dst. */
static int bind_device(const char *src, const char *dst)
{
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return -1;
	close(fd);
	return mount(src, dst, NULL, MS_BIND, NULL);
}

/*
 * overlayfs options naming rootfs's layers relative to their common parent, made our cwd: short
 * options however many layers, still reachable once a tmpfs covers /tmp. 0 or -errno.
 */
static int layer_options(const char *rootfs, char *options, size_t size)
{
	size_t prefix = common_parent(rootfs), len = 0;
	if (!prefix)
		return -EINVAL;
	if (prefix >= size)
		return -ENAMETOOLONG;
	memcpy(options, rootfs, prefix);
	options[prefix] = '\0';
	if (chdir(options) < 0)
		return -errno;
	for (const char *p = "lowerdir="; *p;)
		options[len++] = *p++;
	for (const char *p = rootfs; *p;) {
		p += prefix; /* every layer starts with the common prefix */
		while (*p && *p != ':' && len + 2 < size)
			options[len++] = *p++;
		if (*p == ':')
			options[len++] = *p++;
		if (len + 2 >= size)
			return -ENAMETOOLONG;
	}
	options[len] = '\0';
	return 0;
}

/*
 * The layers mounted at `at`, read-only, nodev, nosuid. Only lower layers, no upperdir: overlayfs
 * mounts the union read-only. One layer: a bind, remounted (a bind takes its flags only on
 * remount). Either way `at` is a mount point, which pivot_root needs. 0 or -1 with errno.
 */
static int mount_layers(const char *options, int layered, const char *at)
{
	const unsigned long flags = MS_RDONLY | MS_NODEV | MS_NOSUID;
	if (layered)
		return mount("overlay", at, "overlay", flags, options);
	return mount(options + sizeof("lowerdir=") - 1, at, NULL, MS_BIND, NULL) < 0 ||
			       mount(NULL, at, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0
		       ? -1
		       : 0;
}

/*
 * Post-mortem: a mount namespace of the session's own whose root is the dead container's layers
 * (its own writes on top), read-only, nodev, nosuid, with a writable /tmp over the container's
 * own and a small /dev (both nodev, nosuid); /proc comes from the session init (a new PID
 * namespace's /proc must be mounted from inside it). The node's root is pivoted away and
 * detached: nothing of the node is left to reach, by a chroot escape or otherwise.
 */
static void mount_dead_root(const struct nsd_spawn_request *req, int sock)
{
	static const struct {
		const char *name;
		unsigned major, minor;
	} devices[] = { { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
			{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 } };
	static const struct {
		const char *target, *name;
	} dev_links[] = { { "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
			  { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" }, { "pts/ptmx", "ptmx" } };
	char options[4096], path[64], src[64];
	int layered = strchr(req->rootfs, ':') != NULL, rc;

	/* The layer paths resolve in the node's mount namespace; unshare gives us a copy of it. */
	if (setns(req->host_pidfd, CLONE_NEWNS) < 0 || unshare(CLONE_NEWNS) < 0)
		fail(sock, NSD_STEP_PM_NAMESPACE, errno, 1);
	/*
	 * Private first: the copy's mounts share peer groups with the node's, so without this every
	 * mount below (and the detach of the old root) would propagate to the node; pivot_root also
	 * refuses (EINVAL) a new root or old root whose parent mount is shared.
	 */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail(sock, NSD_STEP_PM_PRIVATE, errno, 1);
	if ((rc = layer_options(req->rootfs, options, sizeof(options))) < 0)
		fail(sock, NSD_STEP_POSTMORTEM, -rc, 1);
	/* Scratch space (the session's /tmp writes, the device nodes), detached with the node's root. */
	if (mount("tmpfs", PM_SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64m") < 0 ||
	    ensure_dir(PM_ROOT, 0755) < 0 || ensure_dir(PM_SCRATCH "/upper", 0755) < 0 ||
	    ensure_dir(PM_SCRATCH "/work", 0755) < 0 || ensure_dir(PM_DEVICES, 0755) < 0)
		fail(sock, NSD_STEP_POSTMORTEM, errno, 1);
	/* nodev, nosuid: a device node or a setuid file in the container's image grants nothing. */
	if (mount_layers(options, layered, PM_ROOT) < 0)
		fail(sock, NSD_STEP_POSTMORTEM, errno, 1);
	/*
	 * /tmp: the container's files stay visible; the session's writes go to our tmpfs. The root
	 * of an overlay takes the upper directory's owner and mode: the container's /tmp's, so that
	 * a session user other than root may write where the container could.
	 */
	struct stat tmp;
	if (stat(PM_ROOT "/tmp", &tmp) == 0 && S_ISDIR(tmp.st_mode) &&
	    (chown(PM_SCRATCH "/upper", tmp.st_uid, tmp.st_gid) < 0 || chmod(PM_SCRATCH "/upper", tmp.st_mode & 07777) < 0 ||
	     mount("overlay", PM_ROOT "/tmp", "overlay", MS_NOSUID | MS_NODEV,
		   "lowerdir=" PM_ROOT "/tmp,upperdir=" PM_SCRATCH "/upper,workdir=" PM_SCRATCH "/work") < 0))
		fail(sock, NSD_STEP_PM_TMP, errno, 1);
	/*
	 * /dev nodev too: no device node made in it opens. The few devices a shell needs are made in
	 * a tmpfs of the scratch space that allows them, and each bound onto /dev/NAME: a device is
	 * opened through the mount it is found on, the bind, not through /dev's nodev tmpfs.
	 */
	if (mount("tmpfs", PM_DEVICES, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0 ||
	    mount("tmpfs", PM_ROOT "/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") < 0)
		fail(sock, NSD_STEP_PM_DEV, errno, 1);
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		if (concat(src, sizeof(src), (const char *const[]){ PM_DEVICES "/", devices[i].name, NULL }) < 0 ||
		    concat(path, sizeof(path), (const char *const[]){ PM_ROOT "/dev/", devices[i].name, NULL }) < 0)
			fail(sock, NSD_STEP_PM_DEV, ENAMETOOLONG, 1);
		if (mknod(src, S_IFCHR | 0666, makedev(devices[i].major, devices[i].minor)) < 0 || bind_device(src, path) < 0)
			fail(sock, NSD_STEP_PM_DEV, errno, 1);
	}
	for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++) {
		if (concat(path, sizeof(path), (const char *const[]){ PM_ROOT "/dev/", dev_links[i].name, NULL }) < 0)
			fail(sock, NSD_STEP_PM_DEV, ENAMETOOLONG, 1);
		if (symlink(dev_links[i].target, path) < 0)
			fail(sock, NSD_STEP_PM_DEV, errno, 1);
	}
	/* devpts is a mount of its own (its nodes must open); newinstance: not the node's ptys. */
	if (ensure_dir(PM_ROOT "/dev/pts", 0755) < 0 || ensure_dir(PM_ROOT "/dev/shm", 01777) < 0 ||
	    mount("devpts", PM_ROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0 ||
	    mount("tmpfs", PM_ROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=64m") < 0)
		fail(sock, NSD_STEP_PM_DEV, errno, 1);
	/*
	 * pivot_root(".", "."): the new root must be a mount point not on the current root's mount
	 * (the overlay is); with put_old "." the node's root is stacked on top of the new one, so no
	 * directory for it is needed in the read-only snapshot, and none is left behind.
	 */
	int old_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (old_root < 0 || chdir(PM_ROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		fail(sock, NSD_STEP_PIVOT_ROOT, errno, 1);
	/*
	 * Detach the node's root, now on top of ours: MNT_DETACH, as its mounts are busy (the node
	 * uses them) and a plain umount would fail with EBUSY; private above, so the node keeps them.
	 */
	if (fchdir(old_root) < 0 || umount2(".", MNT_DETACH) < 0)
		fail(sock, NSD_STEP_DETACH_OLD_ROOT, errno, 1);
	close(old_root);
	if (chdir("/") < 0)
		fail(sock, NSD_STEP_DETACH_OLD_ROOT, errno, 1);
}

/*
 * The session's own /proc, as kubelet gives a container's (its default masked and read-only
 * paths, whatever the dead container's spec said): the PID namespace is the session's, but the
 * kernel's knobs are the node's. Writing /proc/sys needs only UID 0, no capability: read-only.
 */
static int mount_session_proc(void)
{
	static const char *const read_only[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" };
	static const char *const masked[] = { "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
					      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
					      "/proc/sched_debug", "/proc/scsi" };
	struct stat st;
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	/* A bind onto itself makes the path a mount of its own, which alone can be remounted read-only. */
	for (size_t i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++) {
		if (stat(read_only[i], &st) < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		if (mount(read_only[i], read_only[i], NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount(NULL, read_only[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return -1;
	}
	/* Files are covered by /dev/null, directories by an empty read-only tmpfs. */
	for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++) {
		if (stat(masked[i], &st) < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		if (S_ISDIR(st.st_mode) ? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0
					: mount("/dev/null", masked[i], NULL, MS_BIND, NULL) < 0)
			return -1;
	}
	return 0;
}

/*
 * Wait for the session init and return its wait status. A signal from the agent (or its death)
 * ends the session, as does ending != 0: the init is asked to kill and reap the session; if it
 * has not within 2 s, the cgroup is killed whole (last resort: orphans may be left unreaped).
 */
static int wait_for_init(const struct nsd_spawn_request *req, pid_t init, const sigset_t *waited, int ending)
{
	const struct timespec grace = { .tv_sec = 2, .tv_nsec = 0 };
	int status = 0;
	if (ending)
		(void)kill(init, SIGTERM);
	for (;;) {
		if (waitpid(init, &status, WNOHANG) == init)
			return status;
		int sig = ending ? sigtimedwait(waited, NULL, &grace) : sigwaitinfo(waited, NULL);
		if (sig < 0 && errno == EAGAIN) {
			kill_session(req, init);
			ending = 0;
		} else if (sig > 0 && sig != SIGCHLD && !ending) {
			(void)kill(init, SIGTERM);
			ending = 1;
		}
	}
}

/*
 * The supervisor: joins the target, starts the command, waits for it. Never returns. Run by
 * nsdebug-supervisor's main (below); the library only builds the request it reads.
 */
static void __attribute__((noreturn, unused))
supervise(const struct nsd_spawn_request *req, pid_t agent, int sock, int exit_fd)
{
	sigset_t waited;
	int root_fd = -1, cwd_fd = -1, master_fd = -1, slave_fd = -1, proc_fd = -1;
	int pipe_fds[2];

	/* Signals that end the session are taken synchronously by sigwaitinfo below. */
	sigemptyset(&waited);
	sigaddset(&waited, SIGCHLD);
	sigaddset(&waited, SIGTERM);
	sigaddset(&waited, SIGINT);
	sigaddset(&waited, SIGHUP);
	if (sigprocmask(SIG_SETMASK, &waited, NULL) < 0)
		fail(sock, NSD_STEP_PDEATHSIG, errno, 1);
	/* The agent may be killed with SIGKILL: its death must still end the session. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		fail(sock, NSD_STEP_PDEATHSIG, errno, 1);
	if (getppid() != agent)
		_exit(1);

	/* Into the container's v1 cgroups first (their fds are not kept): what we fork inherits them. */
	if (req->container_cgroup_count < 0 || req->container_cgroup_count > NSD_MAX_CGROUP_JOINS)
		fail(sock, NSD_STEP_JOIN_CONTAINER_CGROUP, EINVAL, 1);
	for (int i = 0; i < req->container_cgroup_count; i++)
		if (write_all(req->container_cgroup_fds[i], "0", 1) < 0)
			fail(sock, NSD_STEP_JOIN_CONTAINER_CGROUP, errno, 1);

	{
		int keep[] = { req->pidfd, req->stdio_fds[0], req->stdio_fds[1], req->stdio_fds[2],
			       req->toolbox_fd, req->cgroup_procs_fd, req->cgroup_kill_fd, req->host_pidfd,
			       sock, exit_fd };
		int n = (int)(sizeof(keep) / sizeof(keep[0]));
		sort_fds(keep, n);
		close_fds_except(keep, n);
	}

	/* Read while /proc is still ours; the init renames itself with it after joining. */
	struct cmdline_area cmdline = find_cmdline_area();

	/* Join the session cgroup before the target's cgroup namespace hides it from us. */
	if (req->cgroup_procs_fd >= 0 && write_all(req->cgroup_procs_fd, "0", 1) < 0)
		fail(sock, NSD_STEP_JOIN_SESSION_CGROUP, errno, 1);

	/* Post-mortem: the root is assembled from the node's view, before joining the sandbox. */
	if (req->rootfs)
		mount_dead_root(req, sock);
	/* Paths in our mount namespace must be opened before setns takes it away. */
	if (req->ns_flags & CLONE_NEWNS) {
		char path[64];
		proc_path(path, sizeof(path), req->pid, "root");
		root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0)
			fail(sock, NSD_STEP_OPEN_ROOT, errno, 1);
		proc_path(path, sizeof(path), req->pid, "cwd");
		cwd_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cwd_fd < 0)
			fail(sock, NSD_STEP_OPEN_CWD, errno, 1);
	}
	/* The agent's own /proc, where the command finds its attr/exec whatever the target's /proc is. */
	if (req->confinement.enabled && req->confinement.lsm_exec) {
		proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (proc_fd < 0)
			fail(sock, NSD_STEP_OPEN_PROC, errno, 1);
	}
	/* The /proc paths above named the pidfd's process only if it is still alive now. */
	if (req->pidfd >= 0 && syscall(SYS_pidfd_send_signal, req->pidfd, 0, NULL, 0) < 0)
		fail(sock, NSD_STEP_TARGET_GONE, errno, 1);

	/* One setns with every flag: atomic, and the kernel orders the user namespace itself. */
	if (req->ns_flags && setns(req->pidfd, req->ns_flags) < 0)
		fail(sock, NSD_STEP_SETNS, errno, 1);
	/* Post-mortem of a pod whose sandbox is gone too: no network of its own, not the node's. */
	if (req->rootfs && req->pidfd < 0 && unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		fail(sock, NSD_STEP_POSTMORTEM, errno, 1);
	/* In a shifted user namespace we arrive unmapped; become the container's root. */
	if (req->ns_flags & CLONE_NEWUSER) {
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			fail(sock, NSD_STEP_BECOME_ROOT, errno, 1);
		(void)setgroups(0, NULL);
	}
	/* setns(CLONE_NEWNS) puts us at the namespace's root; targets that chroot'ed need theirs. */
	if (root_fd >= 0) {
		if (fchdir(root_fd) < 0 || chroot(".") < 0)
			fail(sock, NSD_STEP_CHROOT, errno, 1);
		if (fchdir(cwd_fd) < 0 && chdir("/") < 0)
			fail(sock, NSD_STEP_CHROOT, errno, 1);
		close(root_fd);
		close(cwd_fd);
	}
	if (req->read_only && !req->rootfs)
		make_read_only_copy(sock);
	/* The dead container has no processes: the session gets a PID namespace of its own. */
	if (req->rootfs && unshare(CLONE_NEWPID) < 0)
		fail(sock, NSD_STEP_POSTMORTEM, errno, 1);
	/* A pty from the target's own devpts, so that tty(1) inside names a device that exists. */
	if (req->tty) {
		int unlock = 0;
		master_fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master_fd < 0)
			fail(sock, NSD_STEP_OPEN_PTY, errno, 1);
		if (ioctl(master_fd, TIOCSPTLCK, &unlock) < 0)
			fail(sock, NSD_STEP_OPEN_PTY, errno, 1);
		slave_fd = ioctl(master_fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave_fd < 0)
			fail(sock, NSD_STEP_OPEN_PTY, errno, 1);
	}

	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
		fail(sock, NSD_STEP_FORK_COMMAND, errno, 1);
	pid_t init = _Fork();
	if (init < 0)
		fail(sock, NSD_STEP_FORK_COMMAND, errno, 1);
	if (init == 0) {
		close(pipe_fds[0]);
		close(sock);
		session_init(req, &waited, cmdline, slave_fd, proc_fd, pipe_fds[1]);
	}
	close(pipe_fds[1]);
	if (proc_fd >= 0)
		close(proc_fd);
	if (slave_fd >= 0)
		close(slave_fd);

	/* The command reports a failed exec, or a note; EOF means exec succeeded. */
	struct report first = { NSD_STEP_NONE, 0, 0 }, r;
	ssize_t n;
	while ((n = read(pipe_fds[0], &r, sizeof(r))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(r))
			break;
		first.flags |= r.flags;
		if (r.step != NSD_STEP_NONE) {
			first.step = r.step;
			first.error = r.error;
		}
	}
	close(pipe_fds[0]);
	if (send_report(sock, &first, first.step == NSD_STEP_NONE ? master_fd : -1) < 0 ||
	    first.step != NSD_STEP_NONE) {
		/*
		 * The exec failed (its process exits with the code) or the agent is gone (end it).
		 * Never kill the init first: its unreaped children would be reparented to the
		 * container's PID 1, which may never reap them. It reaps them and exits by itself.
		 */
		(void)wait_for_init(req, init, &waited, first.step == NSD_STEP_NONE);
		_exit(1);
	}
	close(sock);
	if (master_fd >= 0)
		close(master_fd);

	int status = wait_for_init(req, init, &waited, 0);
	int32_t code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	(void)write_all(exit_fd, &code, sizeof(code));
	/* Safety net: anything that escaped the init's reaping goes with the cgroup (and us). */
	kill_session(req, init);
	_exit(0);
}

/*
 * The supervisor runs as a program of its own, not as a fork of the agent: a fork would keep the
 * agent's whole heap mapped, copy-on-write, for as long as its session lasts, and every page the
 * agent then touches would be copied, charged to the agent's memory cgroup (measured: ~70 MiB per
 * session, an OOM kill at 50 sessions). So the request crosses an exec, written to a memfd: the
 * struct, then each string, string list and array it points to, each as an int64 length (-1 for
 * NULL; strings with their NUL) and the bytes.
 */
struct wire {
	int fd;
	int failed;
};

static void put(struct wire *w, const void *p, size_t n)
{
	if (!w->failed && write_all(w->fd, p, n) < 0)
		w->failed = 1;
}

static void put_blob(struct wire *w, const void *p, int64_t n)
{
	int64_t len = p ? n : -1;
	put(w, &len, sizeof(len));
	if (p && n > 0)
		put(w, p, (size_t)n);
}

static void put_str(struct wire *w, const char *s)
{
	put_blob(w, s, s ? (int64_t)strlen(s) + 1 : 0);
}

static void put_strv(struct wire *w, const char *const *v)
{
	int64_t count = 0;
	while (v && v[count])
		count++;
	put(w, &count, sizeof(count));
	for (int64_t i = 0; i < count; i++)
		put_str(w, v[i]);
}

/* The request in a memfd (close-on-exec: the child clears that for itself), or -errno. */
static int write_request(const struct nsd_spawn_request *req)
{
	const struct nsd_confinement *c = &req->confinement;
	int64_t program = 0;
	for (int i = 0; c->seccomp_lengths && i < c->seccomp_filters; i++)
		program += (int64_t)c->seccomp_lengths[i] * (int64_t)sizeof(struct sock_filter);
	int fd = memfd_create("nsdebug-spawn-request", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct wire w = { fd, 0 };
	put(&w, req, sizeof(*req));
	put_str(&w, req->rootfs);
	put_strv(&w, req->argv);
	put_strv(&w, req->envp);
	put_blob(&w, c->groups, c->ngroups > 0 ? (int64_t)c->ngroups * 4 : 0);
	put_blob(&w, c->seccomp_lengths, c->seccomp_filters > 0 ? (int64_t)c->seccomp_filters * 4 : 0);
	put_blob(&w, c->seccomp_program, program);
	put_str(&w, c->lsm_exec);
	if (w.failed || lseek(fd, 0, SEEK_SET) < 0) {
		int err = errno ? errno : EIO;
		close(fd);
		return -err;
	}
	return fd;
}

/* nsdebug-supervisor beside this library (the image's /app/native, the build's native/). */
static int supervisor_path(char *path, size_t size)
{
	Dl_info info;
	if (!dladdr((void *)supervisor_path, &info) || !info.dli_fname)
		return -ENOENT;
	const char *slash = strrchr(info.dli_fname, '/');
	int dir = slash ? (int)(slash - info.dli_fname) : 1;
	int n = snprintf(path, size, "%.*s/nsdebug-supervisor", dir, slash ? info.dli_fname : ".");
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * FD_CLOEXEC on (flags FD_CLOEXEC) or off (0) for every fd the request names and the supervisor's
 * own: off across the supervisor's exec, on again after it so the command inherits none of them.
 * Async-signal-safe (fcntl only). 0 or -errno.
 */
static int set_fd_flags(const struct nsd_spawn_request *req, int request_fd, int sock, int exit_fd, int flags)
{
	int fds[] = { req->pidfd, req->stdio_fds[0], req->stdio_fds[1], req->stdio_fds[2], req->toolbox_fd,
		      req->cgroup_procs_fd, req->cgroup_kill_fd, req->host_pidfd, request_fd, sock, exit_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0 && fcntl(fds[i], F_SETFD, flags) < 0)
			return -errno;
	for (int i = 0; i < req->container_cgroup_count && i < NSD_MAX_CGROUP_JOINS; i++)
		if (fcntl(req->container_cgroup_fds[i], F_SETFD, flags) < 0)
			return -errno;
	return 0;
}

/* In the forked child (async-signal-safe only): keep the fds the supervisor needs, exec it. */
static void __attribute__((noreturn))
exec_supervisor(const struct nsd_spawn_request *req, const char *path, char *const argv[], int request_fd, int sock, int exit_fd)
{
	int err = set_fd_flags(req, request_fd, sock, exit_fd, 0);
	if (err < 0)
		fail(sock, NSD_STEP_FORK_SUPERVISOR, -err, 1);
	/*
	 * Node marks its own 0-2 close-on-exec (uv_disable_stdio_inheritance): kept open here, or
	 * the supervisor's first pipes would take those numbers and the command's stdio clobber them.
	 */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_SETFD, 0) < 0 && (errno != EBADF || open("/dev/null", O_RDWR) != fd))
			fail(sock, NSD_STEP_FORK_SUPERVISOR, errno ? errno : EBADF, 1);
	char *const envp[] = { NULL };
	execve(path, argv, envp);
	fail(sock, NSD_STEP_FORK_SUPERVISOR, errno, 1);
}

EXPORT int nsd_spawn(const struct nsd_spawn_request *req, struct nsd_spawn_result *res)
{
	int sv[2], exit_pipe[2];

	res->supervisor_pid = -1;
	res->pty_master_fd = -1;
	res->exit_fd = -1;
	res->flags = 0;
	res->step = NSD_STEP_NONE;
	res->error = 0;

	/* SEQPACKET keeps the one report a message; CLOEXEC keeps it out of Node's other children. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		res->step = NSD_STEP_SOCKETPAIR;
		res->error = errno;
		return -res->error;
	}
	if (pipe2(exit_pipe, O_CLOEXEC) < 0) {
		res->step = NSD_STEP_SOCKETPAIR;
		res->error = errno;
		close(sv[0]);
		close(sv[1]);
		return -res->error;
	}
	pid_t agent = getpid();
	/* Everything the child needs before its exec is made here: it may not allocate. */
	char path[PATH_MAX], fd_args[4][16];
	int request_fd = supervisor_path(path, sizeof(path));
	if (request_fd == 0)
		request_fd = write_request(req);
	if (request_fd < 0) {
		res->step = NSD_STEP_FORK_SUPERVISOR;
		res->error = -request_fd;
		close(sv[0]);
		close(sv[1]);
		close(exit_pipe[0]);
		close(exit_pipe[1]);
		return -res->error;
	}
	snprintf(fd_args[0], sizeof(fd_args[0]), "%d", request_fd);
	snprintf(fd_args[1], sizeof(fd_args[1]), "%d", (int)agent);
	snprintf(fd_args[2], sizeof(fd_args[2]), "%d", sv[1]);
	snprintf(fd_args[3], sizeof(fd_args[3]), "%d", exit_pipe[1]);
	char *const argv[] = { "nsdebug-supervisor", fd_args[0], fd_args[1], fd_args[2], fd_args[3], NULL };
	pid_t pid = _Fork();
	if (pid < 0) {
		res->step = NSD_STEP_FORK_SUPERVISOR;
		res->error = errno;
		close(request_fd);
		close(sv[0]);
		close(sv[1]);
		close(exit_pipe[0]);
		close(exit_pipe[1]);
		return -res->error;
	}
	if (pid == 0) {
		close(sv[0]);
		close(exit_pipe[0]);
		exec_supervisor(req, path, argv, request_fd, sv[1], exit_pipe[1]);
	}
	close(request_fd);
	close(sv[1]);
	close(exit_pipe[1]);
	res->supervisor_pid = pid;

	struct report r = { NSD_STEP_REPORT, EPIPE, 0 };
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	ssize_t n;
	/*
	 * Bounded: the agent's event loop waits here, and a target can make its side hang (an exec
	 * from a stalled FUSE or NFS mount). Past the limit the supervisor is killed, its session with it.
	 */
	struct pollfd ready = { .fd = sv[0], .events = POLLIN };
	int polled;
	do
		polled = poll(&ready, 1, SPAWN_REPORT_TIMEOUT_MS);
	while (polled < 0 && errno == EINTR);
	if (polled <= 0) {
		n = -1;
		errno = polled == 0 ? ETIMEDOUT : errno;
		kill(pid, SIGKILL);
	} else {
		do
			n = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
		while (n < 0 && errno == EINTR);
	}
	close(sv[0]);
	if (n != (ssize_t)sizeof(r)) {
		/* The supervisor died (or was killed) before reporting. */
		r.step = NSD_STEP_REPORT;
		r.error = n < 0 ? errno : EPIPE;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); n > 0 && c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&res->pty_master_fd, CMSG_DATA(c), sizeof(int));
	res->flags = r.flags;
	if (r.step != NSD_STEP_NONE) {
		res->step = r.step;
		res->error = r.error;
		if (res->pty_master_fd >= 0)
			close(res->pty_master_fd);
		res->pty_master_fd = -1;
		close(exit_pipe[0]);
		return -r.error;
	}
	res->exit_fd = exit_pipe[0];
	return 0;
}

/* What the tracer child of nsd_seccomp_filters hands back, in memory shared with it. */
struct filter_copy {
	int32_t count;
	int32_t max_filters;
	size_t size;
	int32_t *lengths;
	uint8_t *insns;
};

/*
 * The tracer half of nsd_seccomp_filters, in a forked child: ptrace is per thread, and a target
 * that never stops (uninterruptible sleep) must not hold the agent. Exits with 0 or an errno.
 */
static void __attribute__((noreturn)) copy_filters(pid_t pid, struct filter_copy *out)
{
	int status, err = 0;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || ptrace(PTRACE_SEIZE, pid, 0, 0) < 0)
		_exit(errno);
	/* The filters can only be read from a stopped tracee: interrupt it (no signal it could see). */
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0)
		_exit(errno);
	while (waitpid(pid, &status, __WALL) < 0)
		if (errno != EINTR)
			_exit(errno);
	if (!WIFSTOPPED(status))
		_exit(ESRCH);
	/* Index 0 is the oldest filter (the first installed), the order they are installed in again. */
	int count = 0;
	size_t used = 0;
	for (;; count++) {
		long n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)(long)count, NULL);
		if (n < 0) {
			err = errno == ENOENT ? 0 : errno;
			break;
		}
		if (count >= out->max_filters || used + (size_t)n * sizeof(struct sock_filter) > out->size) {
			err = count >= out->max_filters ? E2BIG : ENOSPC;
			break;
		}
		if (ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)(long)count, out->insns + used) != n) {
			err = EIO;
			break;
		}
		out->lengths[count] = (int32_t)n;
		used += (size_t)n * sizeof(struct sock_filter);
	}
	out->count = count;
	/* A signal that arrived meanwhile (a signal-delivery stop) is handed back, not swallowed. */
	int sig = status >> 16 == 0 && WSTOPSIG(status) != SIGTRAP ? WSTOPSIG(status) : 0;
	if (ptrace(PTRACE_DETACH, pid, 0, (void *)(long)sig) < 0 && !err)
		err = errno;
	_exit(err);
}

EXPORT int nsd_seccomp_filters(int32_t pid, uint8_t *buf, int32_t size, int32_t *lengths, int32_t max_filters)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 1000000 };
	if (size < 0 || max_filters < 0)
		return -EINVAL;
	size_t lengths_size = (size_t)max_filters * sizeof(int32_t);
	size_t shared_size = sizeof(struct filter_copy) + lengths_size + (size_t)size;
	uint8_t *shared = mmap(NULL, shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return -errno;
	struct filter_copy *out = (struct filter_copy *)shared;
	*out = (struct filter_copy){ .count = 0, .max_filters = max_filters, .size = (size_t)size,
				     .lengths = (int32_t *)(shared + sizeof(*out)),
				     .insns = shared + sizeof(*out) + lengths_size };
	pid_t tracer = _Fork();
	if (tracer < 0) {
		int err = errno;
		munmap(shared, shared_size);
		return -err;
	}
	if (tracer == 0)
		copy_filters(pid, out);
	int status = 0, rc = -ETIMEDOUT;
	for (int i = 0; i < 2000 && rc == -ETIMEDOUT; i++) {
		pid_t w = waitpid(tracer, &status, WNOHANG);
		if (w == tracer)
			rc = !WIFEXITED(status) ? -EINTR : WEXITSTATUS(status) ? -WEXITSTATUS(status) : out->count;
		else if (w < 0 && errno != EINTR)
			rc = -errno;
		else
			nanosleep(&tick, NULL);
	}
	if (rc == -ETIMEDOUT) {
		/* The tracer's death detaches the target, which then goes on as before. */
		(void)kill(tracer, SIGKILL);
		(void)waitpid(tracer, NULL, 0);
	}
	if (rc > 0) {
		size_t used = 0;
		for (int i = 0; i < rc; i++)
			used += (size_t)out->lengths[i] * sizeof(struct sock_filter);
		memcpy(lengths, out->lengths, (size_t)rc * sizeof(int32_t));
		memcpy(buf, out->insns, used);
	}
	munmap(shared, shared_size);
	return rc;
}

EXPORT int nsd_pidfd_open(int32_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : fd;
}

EXPORT int nsd_open_in_root(int32_t root_fd, const char *path, int32_t flags, int32_t mode)
{
	/*
	 * RESOLVE_IN_ROOT: "..", absolute names and symlinks resolve as if root_fd were "/", so a
	 * container's own symlinks cannot lead out of it; magic links (/proc/PID/fd/N) could, so none.
	 * The kernel rejects a mode without O_CREAT/O_TMPFILE (EINVAL).
	 */
	struct open_how how = {
		.flags = (uint64_t)(uint32_t)flags | O_CLOEXEC,
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? (uint64_t)mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* The child of nsd_file_as: take the target's IDs and capabilities, do the one operation, report. */
static void __attribute__((noreturn))
file_op_as(int sock, int32_t op, int32_t dir_fd, const char *path, const char *to, int32_t flags, int32_t mode,
	   const struct nsd_confinement *c)
{
	struct report r = { 0 };
	int fd = -1;
	/* Groups and GIDs first (CAP_SETGID), keepcaps across setresuid, then exactly the target's sets. */
	if ((c->ngroups >= 0 && setgroups((size_t)c->ngroups, (const gid_t *)c->groups) < 0) ||
	    setresgid(c->gid[0], c->gid[1], c->gid[2]) < 0 || prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 ||
	    setresuid(c->uid[0], c->uid[1], c->uid[2]) < 0 || set_caps(c->cap_permitted, c->cap_effective, 0) < 0) {
		r.error = errno;
	} else if (op == NSD_FILE_OPEN) {
		fd = nsd_open_in_root(dir_fd, path, flags, mode);
		if (fd < 0)
			r.error = -fd;
	} else if (op == NSD_FILE_RENAME ? renameat(dir_fd, path, dir_fd, to)
		   : op == NSD_FILE_MKDIR ? mkdirat(dir_fd, path, (mode_t)mode)
					  : symlinkat(to, dir_fd, path)) {
		r.error = errno;
	}
	_exit(send_report(sock, &r, fd) < 0 ? 1 : 0);
}

/*
 * Fork a child for one task, with a socket pair to report on: in the child (0) sv[1] is its end,
 * in the parent (the child's PID) sv[0] is ours; the other end is closed in each. Or -errno.
 */
static pid_t fork_reporting(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t child = _Fork();
	if (child < 0) {
		int err = errno;
		close(sv[0]);
		close(sv[1]);
		return -err;
	}
	close(child == 0 ? sv[0] : sv[1]);
	return child;
}

/*
 * The one report of a child forked for a single task, then the child reaped: 0 and the fd it sent
 * in *fd (-1 when none came), or -errno.
 */
static int child_report(int sock, pid_t child, int *fd_out)
{
	struct report r = { .error = EPROTO };
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
	int fd = -1;
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	int err = n == (ssize_t)sizeof(r) ? r.error : n < 0 ? errno : EPROTO;
	struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	close(sock);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	if (err && fd >= 0)
		close(fd);
	*fd_out = err ? -1 : fd;
	return -err;
}

/* A name of one component: renameat, mkdirat and symlinkat resolve paths outside RESOLVE_IN_ROOT. */
static int is_entry_name(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

EXPORT int nsd_file_as(int32_t op, int32_t dir_fd, const char *path, const char *to, int32_t flags, int32_t mode,
		       const struct nsd_confinement *creds)
{
	if (op < NSD_FILE_OPEN || op > NSD_FILE_SYMLINK || !path || (op != NSD_FILE_OPEN && !is_entry_name(path)) ||
	    (op == NSD_FILE_RENAME && !is_entry_name(to)) || (op == NSD_FILE_SYMLINK && (!to || !*to)))
		return -EINVAL;
	int sv[2];
	/* A child, so the agent's own credentials never change (and Node's threads never see it). */
	pid_t child = fork_reporting(sv);
	if (child < 0)
		return child;
	if (child == 0)
		file_op_as(sv[1], op, dir_fd, path, to, flags, mode, creds);
	int fd, rc = child_report(sv[0], child, &fd);
	if (rc < 0 || op != NSD_FILE_OPEN) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd >= 0 ? fd : -EPROTO;
}

EXPORT int nsd_snapshot_root(int32_t host_pidfd, const char *rootfs)
{
	if (!rootfs || !*rootfs)
		return -EINVAL;
	int sv[2];
	/* A child: setns and unshare change the caller's mount namespace, never the agent's. */
	pid_t child = fork_reporting(sv);
	if (child < 0)
		return child;
	if (child == 0) {
		struct report r = { 0 };
		char options[4096];
		int fd = -1, rc;
		/* A private copy of the node's mounts (where the layer paths resolve): nothing propagates back. */
		if (setns(host_pidfd, CLONE_NEWNS) < 0 || unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			r.error = errno;
		else if ((rc = layer_options(rootfs, options, sizeof(options))) < 0)
			r.error = -rc;
		/* Over /tmp of the copy: a directory every node has; the node's own /tmp is untouched. */
		else if (mount_layers(options, strchr(rootfs, ':') != NULL, PM_SCRATCH) < 0 ||
			 (fd = open(PM_SCRATCH, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			r.error = errno;
		_exit(send_report(sv[1], &r, fd) < 0 ? 1 : 0);
	}
	int fd, rc = child_report(sv[0], child, &fd);
	return rc < 0 ? rc : fd >= 0 ? fd : -EPROTO;
}

EXPORT int nsd_write_ready(int32_t fd, const uint8_t *buf, int32_t len)
{
	/* Ready means room for PIPE_BUF bytes on a pipe (one free slot): a line that fits never blocks. */
	if (len < 0 || len > PIPE_BUF)
		return -EINVAL;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int ready;
	do
		ready = poll(&p, 1, 0);
	while (ready < 0 && errno == EINTR);
	if (ready < 0)
		return -errno;
	if (ready == 0 || !(p.revents & POLLOUT))
		return (p.revents & (POLLERR | POLLHUP)) ? -EPIPE : -EAGAIN;
	ssize_t n;
	do
		n = write(fd, buf, (size_t)len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int)n;
}

EXPORT int nsd_release_memory(void)
{
	return malloc_trim(0);
}

EXPORT int nsd_reap(int32_t pid)
{
	int status;
	pid_t w = waitpid(pid, &status, WNOHANG);
	if (w < 0)
		return -errno;
	if (w == 0)
		return -EAGAIN;
	return status;
}

EXPORT int nsd_set_winsize(int32_t fd, int32_t rows, int32_t cols)
{
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

EXPORT int nsd_get_winsize(int32_t fd)
{
	struct winsize ws;
	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		return -errno;
	return (int)ws.ws_row << 16 | ws.ws_col;
}

EXPORT int nsd_pipe(int32_t *fds)
{
	int pair[2];
	// CLOEXEC: only the session's spawn hands an end on, as the command's stdio (dup2 clears it).
	if (pipe2(pair, O_CLOEXEC) < 0)
		return -errno;
	fds[0] = pair[0];
	fds[1] = pair[1];
	return 0;
}

EXPORT int nsd_recv_request(int32_t sock, uint8_t *buf, int32_t len, int32_t *fds)
{
	char control[CMSG_SPACE(3 * sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = (size_t)len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	fds[0] = fds[1] = fds[2] = -1;
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (i < 3)
				fds[i] = fd;
			else
				close(fd); /* more than we asked for: never leak them */
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		return -EMSGSIZE;
	return (int)n;
}

#ifdef NSD_SUPERVISOR_MAIN
/* The request as write_request() wrote it; pointers into buf, or -1 when it is malformed. */
struct cursor {
	char *at, *end;
};

static int take(struct cursor *c, void *out, size_t n)
{
	if ((size_t)(c->end - c->at) < n)
		return -1;
	memcpy(out, c->at, n);
	c->at += n;
	return 0;
}

static int take_blob(struct cursor *c, const void **out, int64_t *len)
{
	if (take(c, len, sizeof(*len)) < 0 || *len < -1 || *len > c->end - c->at)
		return -1;
	*out = *len < 0 ? NULL : c->at;
	c->at += *len < 0 ? 0 : *len;
	return 0;
}

static int take_str(struct cursor *c, const char **out)
{
	int64_t len;
	const void *p;
	if (take_blob(c, &p, &len) < 0 || (p && (len == 0 || ((const char *)p)[len - 1] != '\0')))
		return -1;
	*out = p;
	return 0;
}

static int take_strv(struct cursor *c, const char ***out)
{
	int64_t count;
	if (take(c, &count, sizeof(count)) < 0 || count < 0 || count > c->end - c->at)
		return -1;
	const char **v = calloc((size_t)count + 1, sizeof(char *));
	if (!v)
		return -1;
	for (int64_t i = 0; i < count; i++)
		if (take_str(c, &v[i]) < 0 || !v[i])
			return -1;
	*out = v;
	return 0;
}

static int read_request(int fd, struct nsd_spawn_request *req)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(*req) || st.st_size > (64 << 20))
		return -1;
	char *buf = malloc((size_t)st.st_size);
	if (!buf)
		return -1;
	for (off_t got = 0; got < st.st_size;) {
		ssize_t n = pread(fd, buf + got, (size_t)(st.st_size - got), got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += n;
	}
	struct cursor c = { buf, buf + st.st_size };
	struct nsd_confinement *conf = &req->confinement;
	const void *groups, *lengths, *program;
	const char **argv, **envp;
	int64_t groups_len, lengths_len, program_len;
	if (take(&c, req, sizeof(*req)) < 0 || take_str(&c, &req->rootfs) < 0 || take_strv(&c, &argv) < 0 ||
	    take_strv(&c, &envp) < 0 || take_blob(&c, &groups, &groups_len) < 0 ||
	    take_blob(&c, &lengths, &lengths_len) < 0 || take_blob(&c, &program, &program_len) < 0 ||
	    take_str(&c, &conf->lsm_exec) < 0 || c.at != c.end)
		return -1;
	if (groups_len != (conf->ngroups > 0 && groups ? (int64_t)conf->ngroups * 4 : groups ? 0 : -1) ||
	    (lengths && lengths_len != (int64_t)conf->seccomp_filters * 4))
		return -1;
	req->argv = argv;
	req->envp = envp;
	conf->groups = groups;
	conf->seccomp_lengths = lengths;
	conf->seccomp_program = program;
	return 0;
}

/* nsdebug-supervisor REQUEST_FD AGENT_PID REPORT_FD EXIT_FD: only ever run by nsd_spawn. */
int main(int argc, char **argv)
{
	if (argc != 5)
		return 1;
	int request_fd = atoi(argv[1]), sock = atoi(argv[3]), exit_fd = atoi(argv[4]);
	pid_t agent = (pid_t)atoi(argv[2]);
	struct nsd_spawn_request req;
	if (read_request(request_fd, &req) < 0)
		fail(sock, NSD_STEP_FORK_SUPERVISOR, EINVAL, 1);
	close(request_fd);
	/* Close-on-exec again, as they were in the agent: the command must not inherit them. */
	int err = set_fd_flags(&req, -1, sock, exit_fd, FD_CLOEXEC);
	if (err < 0)
		fail(sock, NSD_STEP_FORK_SUPERVISOR, -err, 1);
	supervise(&req, agent, sock, exit_fd);
}
#endif
