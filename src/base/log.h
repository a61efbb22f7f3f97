/*
 * Leveled, structured logging to stderr.
 *
 * A line is logfmt (key=value pairs), so it is both readable and machine-parseable:
 *     ts=2026-11-21T19:40:00.123Z level=info mod=raft msg="became leader" term=5 index=12
 * The caller gives the module, a fixed message, and a printf format for the fields:
 *     LOG_INFO("raft", "became leader", "term=%" PRIu64 " index=%" PRIu64, term, index);
 *     LOG_WARN("net", "peer unreachable", "");
 * Disabled levels cost one integer comparison: the arguments are not evaluated.
 *
 * The time source is a struct aspen_clock (the simulator logs virtual time) and the
 * output goes through a sink (tests capture lines). Each line is handed to write(2) in one
 * call, so lines do not interleave on terminals, files and pipes (a line is shorter than
 * PIPE_BUF's guarantee only up to 4096 bytes, which is also the line cap,
 * ASPEN_LOG_LINE_MAX_BYTES). Control characters in the message and the fields are
 * escaped, so one event is always exactly one line.
 */
#ifndef ASPEN_BASE_LOG_H
#define ASPEN_BASE_LOG_H

#include <stddef.h>

struct aspen_clock;

enum log_level {
    LOG_LEVEL_TRACE,
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_OFF,
};

/* Lines below this level are skipped. Default LOG_LEVEL_INFO, or ASPEN_LOG_LEVEL from the
 * environment if log_init_from_env() was called. Read without locking: set it at start. */
extern enum log_level log_threshold;

/* Receives each finished line, which ends with '\n'; len counts that newline. The line is
 * only valid during the call. */
typedef void log_sink_fn(void *ctx, const char *line, size_t len);

void log_set_level(enum log_level level);

/* Parses "trace|debug|info|warn|error|off". Returns 0 or ASPEN_E_INVALID. */
int log_level_parse(const char *name, enum log_level *out);

/* Applies ASPEN_LOG_LEVEL if it is set and valid. */
void log_init_from_env(void);

/* NULL restores stderr. Like the level, set at start-up (or from a test's own thread):
 * these globals are read without locking. */
void log_set_sink(log_sink_fn *sink, void *ctx);

/* NULL restores the system clock. The clock must outlive its use here. Set at start-up. */
void log_set_clock(const struct aspen_clock *clock);

void log_emit(enum log_level level, const char *module, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define LOG_AT(level, module, msg, ...)                                                            \
    do {                                                                                           \
        if ((level) >= log_threshold)                                                              \
            log_emit((level), (module), (msg), __VA_ARGS__);                                       \
    } while (0)

#define LOG_TRACE(module, msg, ...) LOG_AT(LOG_LEVEL_TRACE, module, msg, __VA_ARGS__)
#define LOG_DEBUG(module, msg, ...) LOG_AT(LOG_LEVEL_DEBUG, module, msg, __VA_ARGS__)
#define LOG_INFO(module, msg, ...)  LOG_AT(LOG_LEVEL_INFO, module, msg, __VA_ARGS__)
#define LOG_WARN(module, msg, ...)  LOG_AT(LOG_LEVEL_WARN, module, msg, __VA_ARGS__)
#define LOG_ERROR(module, msg, ...) LOG_AT(LOG_LEVEL_ERROR, module, msg, __VA_ARGS__)

#endif
