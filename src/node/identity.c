/*
 * identity.c — the node's Ed25519 identity file (identity.h).
 *
 * The pure half (identity_encode, identity_decode) turns a seed into file text and back,
 * checking every byte; the shell half creates the directory and the file, or loads and
 * checks an existing one. Secrets live only in caller-provided structs and in stack
 * buffers that are wiped (sodium_memzero) before they go out of scope.
 */
#include "node/identity.h"

#include "base/crc32c.h"
#include "base/hash.h"
#include "base/hlc.h"
#include "base/slice.h"
#include <aspen/error.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <threads.h>
#include <unistd.h>

#define MAGIC_LINE  "aspen-identity-v1\n"
#define PK_LABEL    "public-key "
#define SEED_LABEL  "secret-seed "
#define CRC_LABEL   "crc32c "
#define MAGIC_LEN   (sizeof(MAGIC_LINE) - 1)
#define PK_AT       MAGIC_LEN
#define PK_HEX_AT   (PK_AT + sizeof(PK_LABEL) - 1)
#define SEED_AT     (PK_HEX_AT + 64 + 1)
#define SEED_HEX_AT (SEED_AT + sizeof(SEED_LABEL) - 1)
#define CRC_AT      (SEED_HEX_AT + 64 + 1)
#define CRC_HEX_AT  (CRC_AT + sizeof(CRC_LABEL) - 1)

_Static_assert(CRC_HEX_AT + 8 + 1 == IDENTITY_FILE_BYTES, "the layout adds up to the file size");
_Static_assert(IDENTITY_PUBLIC_KEY_BYTES == crypto_sign_PUBLICKEYBYTES, "libsodium sizes");
_Static_assert(IDENTITY_SECRET_KEY_BYTES == crypto_sign_SECRETKEYBYTES, "libsodium sizes");
_Static_assert(IDENTITY_SEED_BYTES == crypto_sign_SEEDBYTES, "libsodium sizes");

static int reason(char *why, size_t whylen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int reason(char *why, size_t whylen, int code, const char *fmt, ...)
{
    if (whylen == 0)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- sodium_init, once per process ---- */

static once_flag sodium_once = ONCE_FLAG_INIT;
static int sodium_status;

static void sodium_start(void)
{
    sodium_status = sodium_init(); /* 0: initialised now; 1: already; -1: failed */
}

static int sodium_ready(void)
{
    call_once(&sodium_once, sodium_start);
    return sodium_status < 0 ? ASPEN_E_INTERNAL : 0;
}

/* ---- The format ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Lowercase hex only: the file is written in lowercase, so anything else is damage. */
static bool hex_get(const char *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(in[2 * i]), lo = hex_digit(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

void identity_encode(const uint8_t seed[IDENTITY_SEED_BYTES],
                     const uint8_t public_key[IDENTITY_PUBLIC_KEY_BYTES],
                     char out[IDENTITY_FILE_BYTES])
{
    memcpy(out, MAGIC_LINE, MAGIC_LEN);
    memcpy(out + PK_AT, PK_LABEL, sizeof(PK_LABEL) - 1);
    /* hash_to_hex ends each run with a NUL: the line's '\n' is written over it. */
    hash_to_hex(public_key, IDENTITY_PUBLIC_KEY_BYTES, out + PK_HEX_AT);
    out[SEED_AT - 1] = '\n';
    memcpy(out + SEED_AT, SEED_LABEL, sizeof(SEED_LABEL) - 1);
    hash_to_hex(seed, IDENTITY_SEED_BYTES, out + SEED_HEX_AT);
    out[CRC_AT - 1] = '\n';
    memcpy(out + CRC_AT, CRC_LABEL, sizeof(CRC_LABEL) - 1);
    uint32_t crc = crc32c(out, CRC_AT);
    uint8_t be[4];
    be32_store(be, crc);
    hash_to_hex(be, 4, out + CRC_HEX_AT);
    out[IDENTITY_FILE_BYTES - 1] = '\n';
}

static void identity_fill(struct node_identity *out, const uint8_t *pk, const uint8_t *sk)
{
    memcpy(out->public_key, pk, IDENTITY_PUBLIC_KEY_BYTES);
    memcpy(out->secret_key, sk, IDENTITY_SECRET_KEY_BYTES);
    out->raft_id = hlc_node_id_from_key(pk, IDENTITY_PUBLIC_KEY_BYTES);
    hash_to_hex(pk, IDENTITY_PUBLIC_KEY_BYTES, out->id);
    memcpy(out->short_id, out->id, IDENTITY_SHORT_ID_BYTES - 1);
    out->short_id[IDENTITY_SHORT_ID_BYTES - 1] = '\0';
}

int identity_decode(const char *text, size_t len, struct node_identity *out, char *why,
                    size_t whylen)
{
    memset(out, 0, sizeof(*out));
    int rc = sodium_ready();
    if (rc != 0)
        return reason(why, whylen, rc, "libsodium failed to initialise");
    size_t head = len < MAGIC_LEN ? len : MAGIC_LEN;
    if (memcmp(text, MAGIC_LINE, head) != 0)
        return reason(why, whylen, ASPEN_E_MALFORMED,
                      "not an Aspen identity file (the first line must be %.*s)",
                      (int)MAGIC_LEN - 1, MAGIC_LINE);
    if (len < IDENTITY_FILE_BYTES)
        return reason(why, whylen, ASPEN_E_TRUNCATED, "truncated: %zu bytes of %d", len,
                      IDENTITY_FILE_BYTES);
    if (len > IDENTITY_FILE_BYTES)
        return reason(why, whylen, ASPEN_E_MALFORMED, "unexpected bytes after the crc32c line");
    if (memcmp(text + PK_AT, PK_LABEL, sizeof(PK_LABEL) - 1) != 0 || text[SEED_AT - 1] != '\n' ||
        memcmp(text + SEED_AT, SEED_LABEL, sizeof(SEED_LABEL) - 1) != 0 ||
        text[CRC_AT - 1] != '\n' || memcmp(text + CRC_AT, CRC_LABEL, sizeof(CRC_LABEL) - 1) != 0 ||
        text[IDENTITY_FILE_BYTES - 1] != '\n')
        return reason(why, whylen, ASPEN_E_MALFORMED,
                      "the lines are not public-key, secret-seed and crc32c");

    uint8_t be[4];
    if (!hex_get(text + CRC_HEX_AT, 4, be))
        return reason(why, whylen, ASPEN_E_MALFORMED, "the crc32c line is not 8 hex digits");
    if (crc32c(text, CRC_AT) != be32_load(be))
        return reason(why, whylen, ASPEN_E_CORRUPT, "checksum mismatch: the file is damaged");

    uint8_t pk_stored[IDENTITY_PUBLIC_KEY_BYTES], seed[IDENTITY_SEED_BYTES];
    uint8_t pk[IDENTITY_PUBLIC_KEY_BYTES], sk[IDENTITY_SECRET_KEY_BYTES];
    if (!hex_get(text + PK_HEX_AT, sizeof(pk_stored), pk_stored) ||
        !hex_get(text + SEED_HEX_AT, sizeof(seed), seed)) {
        rc = reason(why, whylen, ASPEN_E_MALFORMED, "a key line is not 64 lowercase hex digits");
        goto wipe;
    }
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
        rc = reason(why, whylen, ASPEN_E_INTERNAL, "libsodium could not derive the key pair");
        goto wipe;
    }
    if (sodium_memcmp(pk, pk_stored, sizeof(pk)) != 0) {
        rc = reason(why, whylen, ASPEN_E_CORRUPT,
                    "the secret seed does not derive the stored public key");
        goto wipe;
    }
    identity_fill(out, pk, sk);
    rc = 0;
wipe:
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(sk, sizeof(sk));
    return rc;
}

void identity_release(struct node_identity *id)
{
    sodium_memzero(id, sizeof(*id));
}

/* ---- Files ---- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* mkdir -p with mode 0700; each directory created is made durable in its parent. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0)
        return reason(err, errlen, ASPEN_E_INVALID, "identity: the data directory path is empty");
    if (len >= sizeof(path))
        return reason(err, errlen, -ENAMETOOLONG, "identity: the data directory path is too long");
    memcpy(path, dir, len + 1);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = '\0';
    /* Visit each prefix that ends at a '/', then the whole path: at most len steps. */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) == 0) {
            char parent[PATH_MAX];
            memcpy(parent, path, i + 1);
            char *slash = strrchr(parent, '/');
            if (slash == parent)
                slash[1] = '\0';
            else if (slash)
                *slash = '\0';
            else
                parent[0] = '.', parent[1] = '\0';
            int rc = fsync_dir(parent);
            if (rc != 0)
                return reason(err, errlen, rc, "identity: %s: cannot sync: %s", parent,
                              strerror(-rc));
        } else if (errno != EEXIST) {
            int rc = -errno;
            return reason(err, errlen, rc, "identity: cannot create directory %s: %s", path,
                          strerror(-rc));
        }
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return reason(err, errlen, -ENOTDIR, "identity: %s is not a directory", dir);
    return 0;
}

static int load_existing(int fd, const char *path, struct node_identity *out, char *err,
                         size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        return reason(err, errlen, rc, "identity: %s: cannot stat: %s", path, strerror(-rc));
    }
    if (!S_ISREG(st.st_mode))
        return reason(err, errlen, ASPEN_E_MALFORMED, "identity: %s: not a regular file", path);
    if (st.st_mode & 077)
        return reason(err, errlen, ASPEN_E_PERMISSION,
                      "identity: %s: permissions %04o are too open: the secret key must not be "
                      "accessible to group or others (chmod 600 it)",
                      path, (unsigned)(st.st_mode & 07777));
    if (st.st_uid != geteuid())
        return reason(err, errlen, ASPEN_E_PERMISSION,
                      "identity: %s: owned by uid %u, not by this user (uid %u)", path,
                      (unsigned)st.st_uid, (unsigned)geteuid());

    char text[IDENTITY_FILE_BYTES + 1]; /* one byte more, to see a longer file */
    size_t len = 0;
    int rc = 0;
    while (len < sizeof(text)) {
        ssize_t r = read(fd, text + len, sizeof(text) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            reason(err, errlen, rc, "identity: %s: cannot read: %s", path, strerror(-rc));
            goto wipe;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    char why[160];
    rc = identity_decode(text, len, out, why, sizeof(why));
    if (rc != 0)
        reason(err, errlen, rc, "identity: %s: %s", path, why);
wipe:
    sodium_memzero(text, sizeof(text));
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Temp file (O_EXCL, 0600), write, fsync, rename without replacing, fsync the directory. */
static int create_new(const char *dir, const char *path, struct node_identity *out, char *err,
                      size_t errlen)
{
    char tmp[PATH_MAX];
    uint8_t seed[IDENTITY_SEED_BYTES], pk[IDENTITY_PUBLIC_KEY_BYTES];
    uint8_t sk[IDENTITY_SECRET_KEY_BYTES];
    char text[IDENTITY_FILE_BYTES];
    int rc = 0, fd = -1;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return reason(err, errlen, -ENAMETOOLONG, "identity: %s: path too long", path);

    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        /* A temp file left by a crash during an earlier creation never became the
         * identity: remove it and try once more. */
        if (fd < 0 && errno == EEXIST && attempt == 0 && unlink(tmp) == 0)
            continue;
        if (fd < 0) {
            rc = -errno;
            return reason(err, errlen, rc, "identity: cannot create %s: %s", tmp, strerror(-rc));
        }
    }

    randombytes_buf(seed, sizeof(seed));
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
        rc = reason(err, errlen, ASPEN_E_INTERNAL, "identity: libsodium could not make a key");
        goto remove_tmp;
    }
    identity_encode(seed, pk, text);
    rc = write_all(fd, text, sizeof(text));
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    fd = -1;
    if (rc != 0) {
        reason(err, errlen, rc, "identity: cannot write %s: %s", tmp, strerror(-rc));
        goto remove_tmp;
    }
    /* RENAME_NOREPLACE: if a file appeared meanwhile it is someone else's identity. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
        int e = errno;
        rc = e == EEXIST ? ASPEN_E_EXISTS : -e;
        reason(err, errlen, rc, "identity: cannot move %s into place: %s", tmp,
               e == EEXIST ? "the file appeared meanwhile" : strerror(e));
        goto remove_tmp;
    }
    rc = fsync_dir(dir);
    if (rc != 0) {
        reason(err, errlen, rc, "identity: %s: cannot sync: %s", dir, strerror(-rc));
        goto wipe;
    }
    identity_fill(out, pk, sk);
    out->was_created = true;
    goto wipe;

remove_tmp:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
wipe:
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(text, sizeof(text));
    return rc;
}

int identity_load_or_create(const char *data_dir, struct node_identity *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (errlen)
        err[0] = '\0';
    int rc = sodium_ready();
    if (rc != 0)
        return reason(err, errlen, rc, "identity: libsodium failed to initialise");
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, IDENTITY_FILE_NAME) >= sizeof(path))
        return reason(err, errlen, -ENAMETOOLONG, "identity: the data directory path is too long");
    rc = make_dirs(data_dir, err, errlen);
    if (rc != 0)
        return rc;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        rc = load_existing(fd, path, out, err, errlen);
        close(fd);
    } else if (errno == ENOENT) {
        rc = create_new(data_dir, path, out, err, errlen);
    } else {
        rc = -errno;
        reason(err, errlen, rc, "identity: cannot open %s: %s", path, strerror(-rc));
    }
    if (rc != 0)
        identity_release(out);
    return rc;
}
