/*
 * BLAKE3 wrapper (base/hash.h) over the official implementation.
 */
#include "base/hash.h"

void hash_init(struct hash_state *s)
{
    blake3_hasher_init(&s->h);
}

void hash_init_keyed(struct hash_state *s, const uint8_t key[HASH_KEY_BYTES])
{
    blake3_hasher_init_keyed(&s->h, key);
}

void hash_init_derive(struct hash_state *s, const char *context)
{
    blake3_hasher_init_derive_key(&s->h, context);
}

void hash_update(struct hash_state *s, const void *data, size_t len)
{
    blake3_hasher_update(&s->h, data, len);
}

void hash_final(const struct hash_state *s, uint8_t *out, size_t out_len)
{
    blake3_hasher_finalize(&s->h, out, out_len);
}

void hash_final_seek(const struct hash_state *s, uint64_t seek, uint8_t *out, size_t out_len)
{
    blake3_hasher_finalize_seek(&s->h, seek, out, out_len);
}

void hash_bytes(const void *data, size_t len, uint8_t out[HASH_BYTES])
{
    struct hash_state s;
    hash_init(&s);
    hash_update(&s, data, len);
    hash_final(&s, out, HASH_BYTES);
}

void hash_keyed(const uint8_t key[HASH_KEY_BYTES], const void *data, size_t len,
                uint8_t out[HASH_BYTES])
{
    struct hash_state s;
    hash_init_keyed(&s, key);
    hash_update(&s, data, len);
    hash_final(&s, out, HASH_BYTES);
}

void hash_derive_key(const char *context, const void *material, size_t len, uint8_t *out,
                     size_t out_len)
{
    struct hash_state s;
    hash_init_derive(&s, context);
    hash_update(&s, material, len);
    hash_final(&s, out, out_len);
}

void hash_to_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}
