/*
 * nsdebug-agent: the thin native entry point the CLI runs in the agent pod.
 *
 * A fresh Node process costs ~130 ms before it runs a line, which would dominate every session.
 * So for `enter`, this client hands its argv and its stdio (SCM_RIGHTS) to the resident
 * `nsdebug-agent serve` over a unix socket, forwards window-size changes, and exits with the
 * code serve sends back. Closing the connection (the client was killed, the exec stream went
 * away) ends the session. Anything else, or no serve to talk to, runs the Node agent itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST_MAX 65536

static volatile sig_atomic_t resized;

static void on_winch(int sig)
{
	(void)sig;
	resized = 1;
}

/* Run the Node agent, bin/nsdebug-agent.js of this binary's package, with our arguments. */
static int exec_node(int argc, char **argv)
{
	char script[PATH_MAX + 32];
	const char *override = getenv("NSDEBUG_AGENT_JS");
	if (override) {
		snprintf(script, sizeof(script), "%s", override);
	} else {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0) {
			perror("nsdebug-agent: readlink /proc/self/exe");
			return 72;
		}
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		/* <package>/native/nsdebug-agent → <package>/bin/nsdebug-agent.js */
		snprintf(script, sizeof(script), "%s/../bin/nsdebug-agent.js", self);
	}
	char **node_argv = calloc((size_t)argc + 2, sizeof(char *));
	if (!node_argv)
		return 72;
	node_argv[0] = "node";
	node_argv[1] = script;
	for (int i = 1; i < argc; i++)
		node_argv[i + 1] = argv[i];
	execvp("node", node_argv);
	fprintf(stderr, "nsdebug-agent: cannot run node %s: %s\n", script, strerror(errno));
	return 72;
}

static int connect_serve(void)
{
	const char *dir = getenv("NSDEBUG_RUN_DIR");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/agent.sock", dir ? dir : "/run/nsdebug");
	if (n < 0 || (size_t)n >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

/* One message: u32 length, then argv as NUL-terminated strings; fds 0, 1, 2 attached. */
static int send_request(int sock, int argc, char **argv)
{
	static char buf[REQUEST_MAX];
	size_t len = 4;
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;
		if (len + n > sizeof(buf))
			return -E2BIG;
		memcpy(buf + len, argv[i], n);
		len += n;
	}
	uint32_t body = (uint32_t)(len - 4);
	memcpy(buf, &body, 4);

	int fds[3] = { 0, 1, 2 };
	char control[CMSG_SPACE(sizeof(fds))];
	memset(control, 0, sizeof(control));
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	/* The whole request goes in one sendmsg so the fds arrive with its first byte. */
	ssize_t sent;
	do
		sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent < 0)
		return -errno;
	return sent == (ssize_t)len ? 0 : -EMSGSIZE;
}

/*
 * Input the command never read stays in the exec's stdin pipe, and containerd does not end an
 * exec until its stdin copy is done (measured: the shim holds that pipe's read end too, so the
 * copy blocks once the pipe is full): the user would never get the exit code. So read and drop
 * what keeps coming, until EOF or a 200 ms pause (someone typing, not a pipe). A terminal's
 * input goes through the pty instead.
 */
static void drain_stdin(void)
{
	char buf[65536];
	struct pollfd in = { .fd = 0, .events = POLLIN };
	if (isatty(0))
		return;
	for (;;) {
		int ready = poll(&in, 1, 200);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			return;
		ssize_t n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
	}
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "enter") != 0 || getenv("NSDEBUG_NO_SERVE"))
		return exec_node(argc, argv);
	int sock = connect_serve();
	if (sock < 0)
		return exec_node(argc, argv);

	struct sigaction sa = { .sa_handler = on_winch };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGWINCH, &sa, NULL) < 0) {
		perror("nsdebug-agent: sigaction");
		return 72;
	}
	int err = send_request(sock, argc - 1, argv + 1);
	if (err < 0) {
		fprintf(stderr, "nsdebug-agent: cannot hand the session to the agent: %s\n", strerror(-err));
		return 72;
	}
	/* Wait for the 4-byte exit code; a window-size change interrupts the read and is forwarded. */
	unsigned char reply[4];
	size_t got = 0;
	while (got < sizeof(reply)) {
		ssize_t n = read(sock, reply + got, sizeof(reply) - got);
		if (n < 0 && errno == EINTR) {
			if (resized) {
				resized = 0;
				(void)send(sock, "W", 1, MSG_NOSIGNAL);
			}
			continue;
		}
		if (n <= 0) {
			fprintf(stderr, "nsdebug-agent: the agent ended the session without an exit code\n");
			return 72;
		}
		got += (size_t)n;
	}
	int32_t code;
	memcpy(&code, reply, 4);
	drain_stdin();
	return code;
}
