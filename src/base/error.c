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
_Static_assert(ASPEN_ERR_BAND_START < -4096, "error band must not overlap errno values");

const char *aspen_strerror(int code)
{
    if (code == 0)
        return "ok";
    if (aspen_err_is_aspen(code))
        return messages[ASPEN_ERR_BAND_START - code];
    if (code < 0 && code > -4096) {
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
    }
    return "unknown error";
}

const char *aspen_err_name(int code)
{
    if (code == 0)
        return "OK";
    if (aspen_err_is_aspen(code))
        return names[ASPEN_ERR_BAND_START - code];
    if (code < 0 && code > -4096) {
        const char *s = strerrorname_np(-code);
        if (s)
            return s;
    }
    return "UNKNOWN";
}
