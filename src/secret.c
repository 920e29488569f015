/*
 * The private-key file check, on its own so that libsafeshare-client can
 * carry it (through tls.c) without util.c, whose allocators exit the
 * process when memory runs out: a library must never call exit().
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int
file_is_secret(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
		    "%s: private key is group or world accessible (mode %03o); "
		    "run chmod 600 on it", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}
