/* Shared by the safeshare CLI's command files. */
#ifndef SAFESHARE_CLI_H
#define SAFESHARE_CLI_H

#include <stdio.h>

enum { EX_OK, EX_LOCAL, EX_USAGE, EX_DENIED, EX_REFUSED, EX_NOANSWER };

void	json_str(FILE *, const char *);
int	cmd_policy(int argc, char *argv[]);

#endif
