/*
 * CRC-32C (Castagnoli): the checksum of iSCSI, ext4 metadata, LevelDB/RocksDB blocks
 * and our own wire frames and log records.
 *
 * It detects the damage that matters here — torn or flipped bytes on disk and on the
 * network — and every x86-64 CPU since 2008 computes it in hardware (SSE4.2 `crc32`),
 * so checksumming a 4 MiB raft message costs well under a millisecond. It is not a
 * MAC: it guards against accidents, not against an adversary.
 *
 * Conventions are the usual ones (reflected polynomial 0x82F63B78, initial value and
 * final XOR 0xFFFFFFFF), so crc32c("123456789") == 0xE3069283 and values agree with
 * other implementations. crc32c_extend continues a finished CRC, so
 * crc32c_extend(crc32c(a), b) == crc32c(a || b) and crc32c_extend(0, x) == crc32c(x).
 */
#ifndef ASPEN_BASE_CRC32C_H
#define ASPEN_BASE_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of (the bytes crc stands for) followed by data[0..len). data may be NULL
 * when len == 0. Uses SSE4.2 when the CPU has it (decided once, on first use); any
 * thread may call it. */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len);

/* The CRC-32C of data[0..len). */
static inline uint32_t crc32c(const void *data, size_t len)
{
    return crc32c_extend(0, data, len);
}

/* ---- The implementations behind crc32c_extend, for tests and benchmarks ---- */

/* Table-driven slicing-by-8: any CPU, any alignment. */
uint32_t crc32c_extend_portable(uint32_t crc, const void *data, size_t len);

/* True on x86-64 CPUs with SSE4.2; false everywhere else. */
bool crc32c_hw_available(void);

/* The SSE4.2 instruction. Call only when crc32c_hw_available() (it asserts). */
uint32_t crc32c_extend_hw(uint32_t crc, const void *data, size_t len);

#endif
