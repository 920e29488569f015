/* libFuzzer target: arbitrary bytes as a disclosure log export to verify. */
#define _GNU_SOURCE		/* memfd_create */
#include <sys/mman.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "auditfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_verify_result	 r;
	char				 path[64];
	int				 fd = memfd_create("export", 0);

	if (fd == -1)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		auditfile_verify(path, NULL, &r);
	}
	close(fd);
	return 0;
}
