/*
 * libnsdebug: start a program inside another process's namespaces.
 *
 * Loaded by src/native/libnsdebug.ts through koffi; the structs and constants below are
 * mirrored there, in the same order. Every function returns 0 (or a value) on success and
 * -errno on failure; the library never exits the calling (Node) process.
 */
#ifndef LIBNSDEBUG_H
#define LIBNSDEBUG_H

#include <stdint.h>

/* What the command is. */
enum nsd_exec_mode {
	NSD_EXEC_COMMAND = 0, /* argv[0] searched in the PATH of envp, inside the target */
	NSD_EXEC_SHELL = 1,   /* the target's /bin/bash, else /bin/sh, else the toolbox's sh */
	NSD_EXEC_TOOLBOX = 2, /* argv run by the toolbox (busybox) opened as toolbox_fd */
};

/* Steps that can fail, reported with errno. Mirrored by STEPS in src/native/libnsdebug.ts. */
enum nsd_step {
	NSD_STEP_NONE = 0,
	NSD_STEP_SOCKETPAIR,
	NSD_STEP_FORK_SUPERVISOR,
	NSD_STEP_PDEATHSIG,
	NSD_STEP_JOIN_SESSION_CGROUP,
	NSD_STEP_OPEN_ROOT,
	NSD_STEP_OPEN_CWD,
	NSD_STEP_TARGET_GONE,
	NSD_STEP_SETNS,
	NSD_STEP_BECOME_ROOT,
	NSD_STEP_CHROOT,
	NSD_STEP_OPEN_PTY,
	NSD_STEP_FORK_COMMAND,
	NSD_STEP_SETSID,
	NSD_STEP_CONTROLLING_TTY,
	NSD_STEP_STDIO,
	NSD_STEP_EXEC,
	NSD_STEP_REPORT,
	NSD_STEP_READ_ONLY,
	NSD_STEP_POSTMORTEM,
	/* apply_confinement(), in the order it runs */
	NSD_STEP_OPEN_PROC,
	NSD_STEP_LSM_LABEL,
	NSD_STEP_DROP_BOUNDING,
	NSD_STEP_SET_GROUPS,
	NSD_STEP_SET_GID,
	NSD_STEP_SET_UID,
	NSD_STEP_SET_CAPS,
	NSD_STEP_AMBIENT_CAPS,
	NSD_STEP_NO_NEW_PRIVS,
	NSD_STEP_SECCOMP,
	NSD_STEP_CONFINE_INIT,
	NSD_STEP_JOIN_CONTAINER_CGROUP,
	/* post-mortem: the session's own mount namespace (mount_dead_root(), in the order it runs) */
	NSD_STEP_PM_NAMESPACE,
	NSD_STEP_PM_PRIVATE,
	NSD_STEP_PM_TMP,
	NSD_STEP_PM_DEV,
	NSD_STEP_PIVOT_ROOT,
	NSD_STEP_DETACH_OLD_ROOT,
	NSD_STEP_PM_PROC,
};

/* Cgroup v1 hierarchies a session can join (the kernel has 14 controllers, some co-mounted). */
#define NSD_MAX_CGROUP_JOINS 16

/* Flags in nsd_spawn_result.flags. */
#define NSD_USED_TOOLBOX 1 /* the target had no shell; the toolbox's sh runs instead */

/*
 * What the command takes before exec: the target process's own credentials, capabilities and
 * filters, read by the agent from /proc/PID/status, /proc/PID/attr and nsd_seccomp_filters().
 * Post-mortem: the dead container's, from its OCI spec (process.user, process.capabilities).
 * enabled == 0 (--privileged, node shells): the command keeps the agent's.
 */
struct nsd_confinement {
	int32_t enabled;
	uint32_t uid[3];          /* real, effective, saved, as the joined user namespace maps them */
	uint32_t gid[3];
	int32_t ngroups;          /* -1: keep ours (the joined user namespace denies setgroups) */
	const uint32_t *groups;   /* supplementary groups */
	uint64_t cap_bounding;    /* bit N: capability N */
	uint64_t cap_permitted;
	uint64_t cap_effective;
	uint64_t cap_inheritable;
	uint64_t cap_ambient;
	int32_t no_new_privs;
	int32_t seccomp_filters;        /* how many, in the order they are installed (oldest first) */
	const int32_t *seccomp_lengths; /* instructions in each */
	const uint8_t *seccomp_program; /* their struct sock_filter instructions, back to back */
	const char *lsm_exec;           /* written to /proc/thread-self/attr/exec, or NULL */
};

struct nsd_spawn_request {
	int32_t pid;             /* target's PID (our PID namespace), for /proc/PID/{root,cwd} */
	int32_t pidfd;           /* pidfd_open(pid): what we join, immune to PID reuse */
	int32_t ns_flags;        /* CLONE_NEW* of the namespaces to join */
	int32_t stdio_fds[3];    /* become the command's 0, 1, 2 when tty == 0 */
	int32_t tty;             /* 1: open a pty inside the target, return its master */
	int32_t mode;            /* enum nsd_exec_mode */
	int32_t toolbox_fd;      /* static busybox opened before joining, or -1 */
	int32_t cgroup_procs_fd; /* the session cgroup's cgroup.procs (read-write), or -1 */
	int32_t cgroup_kill_fd;  /* the session cgroup's cgroup.kill (write), or -1 */
	/*
	 * The target container's cgroup.procs in each cgroup v1 hierarchy (write): the session
	 * joins them, so the container's memory, pids, cpu and device rules hold for it too (on
	 * cgroup v2 the session cgroup itself is made below the container's). count 0: none.
	 */
	int32_t container_cgroup_fds[NSD_MAX_CGROUP_JOINS];
	int32_t container_cgroup_count;
	int32_t read_only;       /* 1: a private, recursively read-only copy of the mount tree */
	/*
	 * Post-mortem: a dead container's filesystem instead of a live process's mount namespace:
	 * a mount namespace of the session's own whose root (pivot_root) is those layers, read-only,
	 * with nothing of the node's left in it. rootfs: its layers, top first, colon-separated host
	 * paths (overlayfs lowerdir syntax), or NULL. host_pidfd: a process in the node's mount
	 * namespace, where those paths resolve.
	 * pidfd/ns_flags then name the pod sandbox's namespaces to join (net, ipc, uts); pidfd -1:
	 * the sandbox is gone too, and the session gets new, empty ones.
	 */
	const char *rootfs;
	int32_t host_pidfd;
	const char *const *argv; /* NULL-terminated */
	const char *const *envp; /* NULL-terminated */
	struct nsd_confinement confinement;
};

struct nsd_spawn_result {
	int32_t supervisor_pid; /* our child; reap it with nsd_reap() */
	int32_t pty_master_fd;  /* with tty: the master side, else -1 */
	int32_t exit_fd;        /* readable: a 4-byte exit code when the command ends; EOF if killed */
	int32_t flags;          /* NSD_USED_TOOLBOX */
	int32_t step;           /* on failure: enum nsd_step */
	int32_t error;          /* on failure: errno */
};

/* Start argv inside the namespaces of req->pid. 0, or -errno with res->step/res->error set. */
int nsd_spawn(const struct nsd_spawn_request *req, struct nsd_spawn_result *res);

/*
 * Copy the seccomp filters of pid (PTRACE_SECCOMP_GET_FILTER; needs CAP_SYS_ADMIN and no seccomp
 * of our own): the instructions into buf (size bytes), oldest filter first, the instruction
 * count of each into lengths (at most max_filters). The number of filters (0: none), or -errno
 * (-ETIMEDOUT: the process did not stop within 2 s, e.g. in uninterruptible sleep).
 */
int nsd_seccomp_filters(int32_t pid, uint8_t *buf, int32_t size, int32_t *lengths, int32_t max_filters);

/* pidfd_open(2) with O_CLOEXEC semantics (pidfds are always close-on-exec). fd or -errno. */
int nsd_pidfd_open(int32_t pid);

/*
 * openat2(2) of path below root_fd, resolved as if root_fd were the root (a container's root
 * from /proc/PID/root): its symlinks and ".." stay inside. Close-on-exec. fd or -errno.
 */
int nsd_open_in_root(int32_t root_fd, const char *path, int32_t flags, int32_t mode);

/* nsd_file_as operations. */
enum nsd_file_op {
	NSD_FILE_OPEN = 0,   /* nsd_open_in_root(dir_fd, path, flags, mode): the fd */
	NSD_FILE_RENAME = 1,  /* renameat(dir_fd, path, dir_fd, to): 0 */
	NSD_FILE_MKDIR = 2,   /* mkdirat(dir_fd, path, mode): 0 */
	NSD_FILE_SYMLINK = 3, /* symlinkat(to, dir_fd, path): 0 */
};

/*
 * One file operation with a process's credentials (cp reads and writes as the container does):
 * done in a forked child that takes creds' IDs, groups and permitted/effective capabilities, so
 * the kernel's permission checks are the container's own. Every path but OPEN's (and RENAME's
 * to) is one name in dir_fd, which must be below the root already. The fd, 0, or -errno.
 */
int nsd_file_as(int32_t op, int32_t dir_fd, const char *path, const char *to, int32_t flags, int32_t mode,
		const struct nsd_confinement *creds);

/*
 * A dead container's last filesystem for reading: rootfs's layers (host paths, top first, as for
 * a post-mortem session) mounted read-only, nodev, nosuid in a private copy of the mount namespace
 * of host_pidfd's process. The fd of its root (O_DIRECTORY), or -errno. The mount lives as long as
 * the fd: the namespace is gone once nsd_snapshot_root returns.
 */
int nsd_snapshot_root(int32_t host_pidfd, const char *rootfs);

/*
 * Write buf (at most PIPE_BUF bytes) to fd only if that cannot block: the bytes written, -EAGAIN
 * when the reader is behind, or -errno. The fd's own flags (shared with a session) stay as they are.
 */
int nsd_write_ready(int32_t fd, const uint8_t *buf, int32_t len);

/* Give the heap's free memory back to the kernel (malloc_trim): serve, once its sessions are over. */
int nsd_release_memory(void);

/* Non-blocking waitpid: the exit status (>= 0) if reaped, -EAGAIN if still running, or -errno. */
int nsd_reap(int32_t pid);

/* Copy a terminal size to fd (TIOCSWINSZ), which signals SIGWINCH to its foreground group. */
int nsd_set_winsize(int32_t fd, int32_t rows, int32_t cols);

/* Read the terminal size of fd (TIOCGWINSZ) as rows << 16 | cols, or -errno. */
int nsd_get_winsize(int32_t fd);

/* A pipe, both ends close-on-exec: fds[0] reads, fds[1] writes. 0, or -errno. */
int nsd_pipe(int32_t *fds);

/*
 * Receive (part of) a request from the thin entry point without blocking: up to len bytes into
 * buf and, with the first part, its stdin/stdout/stderr into fds[0..2] (close-on-exec; -1 if
 * none came). Bytes received, 0 at EOF, or -errno (-EAGAIN: nothing yet).
 */
int nsd_recv_request(int32_t sock, uint8_t *buf, int32_t len, int32_t *fds);

#endif
