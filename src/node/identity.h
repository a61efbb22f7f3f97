/*
 * identity.h — the node's Ed25519 identity: created once, kept in the data directory,
 * and the source of its raft id.
 *
 * Peers authenticate each other by public key (TLS with raw public keys), and the raft id
 * is derived from the public key (hlc_node_id_from_key), so the key file *is* the node:
 * losing it makes a new member, copying it makes two nodes with one id. Hence the care
 * taken here: the file is created atomically and durably (temp file, fsync, a rename that
 * never replaces, fsync of the directory), never overwritten, refused when others may
 * read it (as ssh refuses a loose private key), and checked on every load.
 *
 * The file `<data-dir>/identity.key` is a few lines of text a human can recognise:
 *     aspen-identity-v1
 *     public-key <64 hex digits>
 *     secret-seed <64 hex digits>
 *     crc32c <8 hex digits: CRC-32C of all the bytes before this line>
 * The seed is the secret (libsodium derives the 64-byte secret key from it); the public
 * key is stored too, so `head -2` names the node, and a load checks that the seed still
 * derives it.
 */
#ifndef ASPEN_NODE_IDENTITY_H
#define ASPEN_NODE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDENTITY_PUBLIC_KEY_BYTES 32
#define IDENTITY_SECRET_KEY_BYTES 64 /* libsodium's layout: seed ++ public key */
#define IDENTITY_SEED_BYTES       32
#define IDENTITY_ID_HEX_BYTES     (2 * IDENTITY_PUBLIC_KEY_BYTES + 1)
#define IDENTITY_SHORT_ID_BYTES   17 /* 16 hex digits + NUL */

/* The exact size of an identity file (see the format above). */
#define IDENTITY_FILE_BYTES (18 + (11 + 64 + 1) + (12 + 64 + 1) + (7 + 8 + 1))

/* Name of the file inside the data directory. */
#define IDENTITY_FILE_NAME "identity.key"

struct node_identity {
    uint8_t public_key[IDENTITY_PUBLIC_KEY_BYTES];
    uint8_t secret_key[IDENTITY_SECRET_KEY_BYTES]; /* secret: never log or print it */
    uint64_t raft_id;                              /* hlc_node_id_from_key(public_key) */
    char id[IDENTITY_ID_HEX_BYTES];                /* lowercase hex of the public key */
    char short_id[IDENTITY_SHORT_ID_BYTES];        /* its first 16 hex digits, for logs */
    bool was_created;                              /* this call created the file */
};

/* Loads <data_dir>/identity.key, or creates it (and data_dir, mode 0700, with any missing
 * parents) when it does not exist. An existing file is never changed.
 *
 * Returns 0, or an error with a message naming the file in err (NUL-terminated, cut to
 * errlen): ASPEN_E_PERMISSION (the file is readable or writable by group or others, or
 * owned by another user), ASPEN_E_CORRUPT (bad checksum, or the seed does not derive the
 * stored public key), ASPEN_E_TRUNCATED (shorter than the format), ASPEN_E_MALFORMED
 * (not an identity file of this version), ASPEN_E_EXISTS (another process created the
 * file at the same moment), ASPEN_E_INTERNAL (libsodium failed to initialise), or -errno.
 * On error *out holds no secret. Release a loaded identity with identity_release. */
int identity_load_or_create(const char *data_dir, struct node_identity *out, char *err,
                            size_t errlen);

/* Wipes the secret key (sodium_memzero) and everything else in id. */
void identity_release(struct node_identity *id);

/* ---- The file format, pure: for tests and fuzzing ---- */

/* Writes the IDENTITY_FILE_BYTES-byte file text for seed into out (no NUL). The caller
 * wipes out when done: it holds the seed. */
void identity_encode(const uint8_t seed[IDENTITY_SEED_BYTES],
                     const uint8_t public_key[IDENTITY_PUBLIC_KEY_BYTES],
                     char out[IDENTITY_FILE_BYTES]);

/* Checks the file text text[0..len) and fills *out from it. Errors as for
 * identity_load_or_create (TRUNCATED, MALFORMED, CORRUPT) with a reason in why. On error
 * *out holds no secret. */
int identity_decode(const char *text, size_t len, struct node_identity *out, char *why,
                    size_t whylen);

#endif
