/*
 * Logging (base/log.h). A line is assembled in a stack buffer and handed to the sink in
 * one piece; the default sink writes it to stderr with one write(2).
 */
#include "base/log.h"

#include "base/clock.h"
#include "base/constants.h"
#include <aspen/error.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LEVEL_INFO;

static log_sink_fn *sink;
static void *sink_ctx;
static const struct aspen_clock *log_clock;

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (int i = LOG_LEVEL_TRACE; i <= LOG_LEVEL_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return ASPEN_E_INVALID;
}

void log_init_from_env(void)
{
    const char *env = getenv("ASPEN_LOG_LEVEL");
    enum log_level level;
    if (env && log_level_parse(env, &level) == 0)
        log_threshold = level;
}

void log_set_sink(log_sink_fn *fn, void *ctx)
{
    sink = fn;
    sink_ctx = ctx;
}

void log_set_clock(const struct aspen_clock *clock)
{
    log_clock = clock;
}

/* Appends src to line at *pos, escaping what would break the line apart or hide in it
 * (control characters; with quote also '"' and '\\'). Stops at the buffer's end. */
static void append_escaped(char *line, size_t cap, size_t *pos, const char *src, bool quote)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;
    for (const unsigned char *s = (const unsigned char *)src; *s && p + 4 < cap; s++) {
        if (quote && (*s == '"' || *s == '\\')) {
            line[p++] = '\\';
            line[p++] = (char)*s;
        } else if (*s == '\n') {
            line[p++] = '\\';
            line[p++] = 'n';
        } else if (*s < 0x20 || *s == 0x7f) {
            line[p++] = '\\';
            line[p++] = 'x';
            line[p++] = hex[*s >> 4];
            line[p++] = hex[*s & 15];
        } else {
            line[p++] = (char)*s;
        }
    }
    *pos = p;
}

static void write_stderr(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n <= 0)
            return; /* nowhere to report a failing stderr */
        line += n;
        len -= (size_t)n;
    }
}

void log_emit(enum log_level level, const char *module, const char *msg, const char *fmt, ...)
{
    char line[ASPEN_LOG_LINE_MAX_BYTES];
    const size_t cap = sizeof(line) - 1; /* room for the final newline */
    const struct aspen_clock *c = log_clock ? log_clock : clock_system();
    uint64_t now = clock_wall_ns(c);
    time_t secs = (time_t)(now / 1000000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);

    char stamp[32];
    size_t sl = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    stamp[sl] = '\0';
    int n = snprintf(line, cap, "ts=%s.%03uZ level=%s mod=%s msg=", stamp,
                     (unsigned)(now / 1000000u % 1000u),
                     level_names[level <= LOG_LEVEL_ERROR ? level : LOG_LEVEL_ERROR], module);
    size_t pos = n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
    /* Every write below stays under cap, which keeps the last byte for the newline. */
    if (pos < cap)
        line[pos++] = '"';
    append_escaped(line, cap, &pos, msg, true);
    if (pos < cap)
        line[pos++] = '"';

    /* Fields are formatted apart and then escaped, so a value holding a newline cannot
     * forge a second log line. */
    char fields[ASPEN_LOG_LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(fields, sizeof(fields), fmt, ap);
    va_end(ap);
    if (n > 0 && pos + 1 < cap) {
        line[pos++] = ' ';
        append_escaped(line, cap, &pos, fields, false);
    }
    line[pos++] = '\n';

    if (sink)
        sink(sink_ctx, line, pos);
    else
        write_stderr(line, pos);
}
