/*
 * BLAKE3 hashing: the content-address function of the blob store and the source of
 * derived identifiers (HLC node ids, ...).
 *
 * A thin wrapper over the official BLAKE3 C implementation, compiled at build time from
 * the sources Debian's librust-blake3-dev installs, with run-time SIMD dispatch (SSE2,
 * SSE4.1, AVX2, AVX-512 on x86-64). Wrapping it keeps blake3.h out of every other header
 * and gives us one place to choose output lengths and names.
 */
#ifndef ASPEN_BASE_HASH_H
#define ASPEN_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <blake3.h>

#define HASH_BYTES     32 /* default output: 256 bits */
#define HASH_KEY_BYTES 32
#define HASH_HEX_BYTES (2 * HASH_BYTES + 1)

/* Incremental hasher. Copyable by value (to hash a common prefix once). */
struct hash_state {
    blake3_hasher h;
};

/* Plain hash. */
void hash_init(struct hash_state *s);

/* Keyed hash (a MAC) with a 32-byte key. */
void hash_init_keyed(struct hash_state *s, const uint8_t key[HASH_KEY_BYTES]);

/* Key derivation: context is a hard-coded, globally unique, application-specific string
 * ("aspen 2026-11-21 hlc node id v1"), never data supplied at run time. */
void hash_init_derive(struct hash_state *s, const char *context);

void hash_update(struct hash_state *s, const void *data, size_t len);

/* Writes out_len bytes of output (any length: BLAKE3 is an XOF). Does not consume the
 * state: more input may follow and hash_final may be called again. */
void hash_final(const struct hash_state *s, uint8_t *out, size_t out_len);

/* Output bytes starting at byte offset seek of the extended output. */
void hash_final_seek(const struct hash_state *s, uint64_t seek, uint8_t *out, size_t out_len);

/* One-shot helpers writing HASH_BYTES. */
void hash_bytes(const void *data, size_t len, uint8_t out[HASH_BYTES]);
void hash_keyed(const uint8_t key[HASH_KEY_BYTES], const void *data, size_t len,
                uint8_t out[HASH_BYTES]);
void hash_derive_key(const char *context, const void *material, size_t len, uint8_t *out,
                     size_t out_len);

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void hash_to_hex(const uint8_t *bytes, size_t n, char *out);

#endif
