/*
 * A test shim that test_durable.c preloads into safeshared (LD_PRELOAD),
 * to hold the log's fdatasync as logq_set_fsync() does in the unit tests
 * but in the real daemon: an fdatasync() of the file SAFESHARE_HOLD_WAL
 * (the log's -wal, by its real path) waits while the file
 * SAFESHARE_HOLD_FILE exists, and says it waits by creating
 * SAFESHARE_HOLD_FILE.held (removed when it goes on). Every other
 * fdatasync() goes straight to the kernel. A hold lasts 60 s at most.
 * Not linked into anything: only the test loads it.
 */
#include <sys/syscall.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
fdatasync(int fd)
{
	const char	*wal = getenv("SAFESHARE_HOLD_WAL");
	const char	*hold = getenv("SAFESHARE_HOLD_FILE");
	struct timespec	 ts = { 0, 10 * 1000 * 1000 };
	char		 link[64], path[PATH_MAX], held[PATH_MAX];
	ssize_t		 n;
	int		 hfd;

	if (wal == NULL || hold == NULL)
		goto sync;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		goto sync;
	path[n] = '\0';
	if (strcmp(path, wal) != 0 || access(hold, F_OK) != 0)
		goto sync;
	snprintf(held, sizeof(held), "%s.held", hold);
	if ((hfd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) != -1)
		close(hfd);
	for (int i = 0; i < 6000 && access(hold, F_OK) == 0; i++)
		nanosleep(&ts, NULL);
	unlink(held);
sync:
	return (int)syscall(SYS_fdatasync, fd);
}
