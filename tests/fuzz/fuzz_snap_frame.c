/*
 * Fuzz target for the snapshot-transfer protocol's frame decoder (node/snap.h,
 * snap_wire.c): frames arrive from peers, so any bytes must decode or be refused without
 * a crash or an out-of-bounds read. A frame that decodes is canonical: encoding what was
 * decoded gives back exactly the input bytes.
 */
#include "base/assert.h"
#include "base/buf.h"
#include "node/snap.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snap_frame f;
    if (snap_frame_decode(slice_make(data, size), &f) != 0)
        return 0;
    ASPEN_ASSERT(f.type >= SNAP_CHUNK && f.type <= SNAP_RESULT && f.code <= 0);
    struct buf b;
    buf_init(&b, size + 16);
    ASPEN_ASSERT(snap_frame_encode(&f, &b) == 0);
    ASPEN_ASSERT(b.len == size && memcmp(b.data, data, size) == 0);
    buf_release(&b);
    return 0;
}
