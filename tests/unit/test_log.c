/*
 * The daemon's own log: key=value lines, one write each; a holding thread's
 * info lines wait for log_flush(), and a warning takes them out at once, in
 * order.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static char	 path[256];
static int	 owed;

static void
setup(void)
{
	snprintf(path, sizeof(path), "/tmp/safeshare-test-log-%d.txt", (int)getpid());
	cr_assert_not_null(freopen(path, "w", stderr));
	log_init(LOG_LEVEL_INFO, "test");
	owed = 0;
}

static void
teardown(void)
{
	log_hold(NULL, NULL);
	unlink(path);
}

TestSuite(log, .init = setup, .fini = teardown);

/* What stderr holds so far. */
static char *
written(void)
{
	size_t	 len;
	char	*s;

	fflush(stderr);
	s = file_read(path, 1 << 20, &len, NULL, NULL, 0);
	cr_assert_not_null(s);
	return s;
}

static void
count_owed(void *arg)
{
	(*(int *)arg)++;
}

Test(log, line_is_key_value_with_a_newline)
{
	char *s;

	log_info("event=x n=%d", 7);
	s = written();
	cr_expect(strstr(s, " prog=test level=info event=x n=7\n") != NULL, "%s", s);
	cr_expect_eq(strncmp(s, "ts=", 3), 0);
	free(s);
}

Test(log, held_lines_wait_for_the_flush_and_ask_for_it_once)
{
	char *s;

	log_hold(count_owed, &owed);
	log_info("event=first");
	log_info("event=second");
	log_debug("event=hidden");		/* below the level: never */
	s = written();
	cr_expect_str_eq(s, "", "nothing written before the flush");
	free(s);
	cr_expect_eq(owed, 1, "one flush owed, asked for once");

	log_flush();
	s = written();
	cr_expect(strstr(s, "event=first") != NULL && strstr(s, "event=second") != NULL);
	cr_expect(strstr(s, "event=first") < strstr(s, "event=second"));
	cr_expect(strstr(s, "hidden") == NULL);
	free(s);

	log_info("event=third");
	cr_expect_eq(owed, 2, "an empty buffer asks again");
}

Test(log, a_warning_goes_out_at_once_after_the_lines_before_it)
{
	char *s;

	log_hold(count_owed, &owed);
	log_info("event=before");
	log_warnx("event=trouble");
	s = written();
	cr_expect(strstr(s, "event=before") != NULL, "%s", s);
	cr_expect(strstr(s, "level=warn event=trouble") != NULL, "%s", s);
	cr_expect(strstr(s, "event=before") < strstr(s, "event=trouble"));
	free(s);
}

Test(log, holding_stops_with_a_flush)
{
	char *s;

	log_hold(count_owed, &owed);
	log_info("event=held");
	log_hold(NULL, NULL);
	log_info("event=direct");
	s = written();
	cr_expect(strstr(s, "event=held") != NULL && strstr(s, "event=direct") != NULL,
	    "%s", s);
	free(s);
	cr_expect_eq(owed, 1);
}

/* A full buffer is written, whole lines only, before the next line goes in. */
Test(log, a_full_buffer_is_written_not_dropped)
{
	char	 big[1500], *s;
	int	 lines = 0;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_hold(count_owed, &owed);
	for (int i = 0; i < 40; i++)
		log_info("event=big i=%d v=%s", i, big);
	log_flush();
	s = written();
	for (char *p = s; (p = strstr(p, "event=big")) != NULL; p++)
		lines++;
	cr_expect_eq(lines, 40, "every line, none cut in two");
	cr_expect(strstr(s, "i=39 ") != NULL);
	free(s);
}

/*
 * Issue 14 item 9: a request id of "q\nlevel=error event=forged x=1" made a
 * second, forged line. Every %s value is now one logfmt value: quoted and
 * escaped when it has to be, so it cannot end the line or start a key.
 */
Test(log, values_cannot_forge_lines_or_keys)
{
	char *s, *nl;

	log_info("event=refused request_id=%s agency=%s", "q\nlevel=error event=forged x=1",
	    "police");
	log_info("event=x a=%s b=%s c=\"%s\" d=%.3s e=%s", "with space", "",
	    "say \"hi\"\r\x1b[2K", "abcdef", "back\\slash");
	log_warnx("event=y n=%zu m=%llu k=%d f=%.1f p=%s%%", (size_t)3,
	    (unsigned long long)18446744073709551615ULL, -4, 2.25, "ok");
	s = written();
	/* Three events, three lines: the forged one is not a line of its own. */
	nl = s;
	for (int i = 0; i < 3; i++) {
		cr_assert_not_null(nl = strchr(nl, '\n'), "%s", s);
		nl++;
	}
	cr_expect_eq(*nl, '\0', "more than three lines:\n%s", s);
	cr_expect(strstr(s, "request_id=\"q\\nlevel\\=error") == NULL, "%s", s);
	cr_expect(strstr(s, " request_id=\"q\\nlevel=error event=forged x=1\" "
	    "agency=police\n") != NULL, "%s", s);
	cr_expect(strstr(s, " a=\"with space\" b=\"\" c=\"say \\\"hi\\\"\\r\\x1b[2K\" "
	    "d=abc e=\"back\\\\slash\"\n") != NULL, "%s", s);
	cr_expect(strstr(s, " level=warn event=y n=3 m=18446744073709551615 k=-4 "
	    "f=2.2 p=ok%\n") != NULL || strstr(s, "f=2.3 p=ok%\n") != NULL, "%s", s);
	free(s);
}

/* log_warn()'s strerror is a value like any other. */
Test(log, errno_text_is_a_value)
{
	char *s;

	errno = ENOENT;
	log_warn("event=open path=%s", "/tmp/a b");
	s = written();
	cr_expect(strstr(s, " event=open path=\"/tmp/a b\" error=\"No such file or "
	    "directory\"\n") != NULL, "%s", s);
	free(s);
}

/*
 * Issue 13 (the event loop's CPU): %s, %d, %i and %u with no flag, width
 * or precision, and the line's prefix, are printed without snprintf(). They
 * must print what printf prints, at the limits of every modifier too, and
 * the conversions with flags or widths must still take the general path.
 */
Test(log, plain_conversions_print_as_printf_does)
{
	const char *volatile none = NULL;	/* not a constant: gcc would warn */
	char	 want[1024], *s, *p;
	int	 y, mo, d, h, mi, sec, ms, k = 0;

	log_info("event=n a=%d b=%d c=%i d=%u e=%ld f=%ld g=%lu h=%lld i=%lld "
	    "j=%llu k=%zu l=%zd m=%05d n=%-3u| o=%x p=%hhd q=%lli r=%s s=%s",
	    0, -2147483647 - 1, 2147483647, 4294967295U, -9223372036854775807L - 1,
	    9223372036854775807L, 18446744073709551615UL,
	    -9223372036854775807LL - 1, 9223372036854775807LL,
	    18446744073709551615ULL, (size_t)1234567, (ssize_t)-42, -17, 7U,
	    255U, (signed char)-5, -1LL, none, "x=y");
	snprintf(want, sizeof(want), " prog=test level=info event=n a=%d b=%d c=%i "
	    "d=%u e=%ld f=%ld g=%lu h=%lld i=%lld j=%llu k=%zu l=%zd m=%05d n=%-3u| "
	    "o=%x p=%hhd q=%lli r=(null) s=\"x=y\"\n",
	    0, -2147483647 - 1, 2147483647, 4294967295U, -9223372036854775807L - 1,
	    9223372036854775807L, 18446744073709551615UL,
	    -9223372036854775807LL - 1, 9223372036854775807LL,
	    18446744073709551615ULL, (size_t)1234567, (ssize_t)-42, -17, 7U,
	    255U, (signed char)-5, -1LL);
	s = written();
	cr_assert_not_null(p = strstr(s, " prog="), "%s", s);
	cr_expect_str_eq(p, want);
	/* ts=YYYY-MM-DDTHH:MM:SS.mmmZ, the milliseconds always three digits. */
	cr_expect_eq(sscanf(s, "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %n", &y, &mo, &d, &h,
	    &mi, &sec, &ms, &k), 7, "%s", s);
	cr_expect_eq(k, 28, "%s", s);
	cr_expect(y >= 2024 && mo >= 1 && mo <= 12 && ms >= 0 && ms <= 999, "%s", s);
	free(s);
}
