/*
 * Error messages and names, generated from the one X-macro table in aspen/error.h.
 * Negated errno values are described by glibc (strerrordesc_np / strerrorname_np,
 * which return static strings and are thread-safe, unlike strerror).
 */
#include <aspen/error.h>

#include <string.h>

static const char *const messages[ASPEN_ERR_COUNT] = {
#define MSG_(name, msg) [ASPEN_ERR_INDEX_##name] = msg,
    ASPEN_ERRNO_MAP(MSG_)
#undef MSG_
};

static const char *const names[ASPEN_ERR_COUNT] = {
#define NAME_(name, msg) [ASPEN_ERR_INDEX_##name] = "ASPEN_E_" #name,
    ASPEN_ERRNO_MAP(NAME_)
#undef NAME_
};

_Static_assert(ASPEN_ERR_BAND_END < ASPEN_ERR_BAND_START, "error band must not be empty");
_Static_assert(ASPEN_ERR_BAND_START < -ASPEN_ERRNO_LIMIT,
               "error band must not overlap errno values");

/* The one lookup behind both public functions: ok_text for 0, our table for our band,
 * glibc's static strings (thread-safe, unlike strerror) for negated errno values. */
static const char *lookup(int code, const char *ok_text, const char *const table[],
                          const char *(*errno_text)(int), const char *unknown)
{
    if (code == 0)
        return ok_text;
    if (aspen_err_is_aspen(code))
        return table[ASPEN_ERR_BAND_START - code];
    if (code < 0 && code > -ASPEN_ERRNO_LIMIT) {
        const char *s = errno_text(-code);
        if (s)
            return s;
    }
    return unknown;
}

const char *aspen_strerror(int code)
{
    return lookup(code, "ok", messages, strerrordesc_np, "unknown error");
}

const char *aspen_err_name(int code)
{
    return lookup(code, "OK", names, strerrorname_np, "UNKNOWN");
}
