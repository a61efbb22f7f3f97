/*
 * Slices, reader and growable buffer: ordering is bytewise with prefixes first, the
 * reader never over-reads, and the buffer honours its maximum and stays unchanged when
 * an append fails.
 */
#include "test.h"

#include "base/buf.h"
#include "base/mem.h"

static void test_slice_order(void)
{
    CHECK(slice_cmp(slice_str("a"), slice_str("b")) < 0);
    CHECK(slice_cmp(slice_str("ab"), slice_str("a")) > 0);
    CHECK(slice_cmp(slice_str(""), slice_str("")) == 0);
    CHECK(slice_cmp(slice_make(NULL, 0), slice_str("x")) < 0);
    uint8_t hi[] = {0xff}, lo[] = {0x00, 0xff};
    CHECK(slice_cmp(slice_make(lo, 2), slice_make(hi, 1)) < 0); /* unsigned bytes */
    uint8_t nul_a[] = {'k', 0, 'a'}, nul_b[] = {'k', 0, 'b'};
    CHECK(slice_cmp(slice_make(nul_a, 3), slice_make(nul_b, 3)) < 0);
    CHECK(slice_eq(slice_make(nul_a, 2), slice_make(nul_b, 2)));
    CHECK(slice_has_prefix(slice_str("prefix/key"), slice_str("prefix/")));
    CHECK(!slice_has_prefix(slice_str("pre"), slice_str("prefix/")));
}

static void test_endian_round_trip(void)
{
    uint8_t b[8];
    be64_store(b, 0x0102030405060708ULL);
    CHECK(b[0] == 1 && b[7] == 8);
    CHECK_EQ_U64(be64_load(b), 0x0102030405060708ULL);
    be32_store(b, 0xdeadbeef);
    CHECK_EQ_U64(be32_load(b), 0xdeadbeef);
    be16_store(b, 0xbeef);
    CHECK_EQ(be16_load(b), 0xbeef);
}

static void test_reader_bounds(void)
{
    uint8_t data[] = {1, 0, 0, 0, 2, 9, 9};
    struct reader r = reader_make(slice_make(data, sizeof(data)));
    uint8_t u8;
    uint32_t u32;
    uint64_t u64;
    struct slice s;
    CHECK_OK(reader_u8(&r, &u8));
    CHECK_EQ(u8, 1);
    CHECK_OK(reader_be32(&r, &u32));
    CHECK_EQ(u32, 2);
    CHECK_ERR(reader_be64(&r, &u64), ASPEN_E_TRUNCATED);
    CHECK_ERR(reader_be32(&r, &u32), ASPEN_E_TRUNCATED);
    CHECK_EQ(r.left, 2); /* failed reads consume nothing */
    CHECK_ERR(reader_bytes(&r, 3, &s), ASPEN_E_TRUNCATED);
    CHECK_OK(reader_bytes(&r, 2, &s));
    CHECK_EQ(s.len, 2);
    CHECK_ERR(reader_u8(&r, &u8), ASPEN_E_TRUNCATED);
}

static void test_buf_append_and_grow(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        CHECK_OK(buf_append_u8(&b, (uint8_t)i));
    CHECK_OK(buf_append_be32(&b, 0x01020304));
    CHECK_OK(buf_append_be64(&b, 0x05060708090a0b0cULL));
    CHECK_OK(buf_printf(&b, "k=%d", 42));
    CHECK_EQ(b.len, 1000 + 4 + 8 + 4);
    CHECK_EQ(b.data[999], (uint8_t)999);
    CHECK_EQ_U64(be32_load(b.data + 1000), 0x01020304);
    CHECK_EQ_U64(be64_load(b.data + 1004), 0x05060708090a0b0cULL);
    CHECK_MEM_EQ(b.data + 1012, "k=42", 4);
    CHECK_OK(buf_append(&b, NULL, 0));
    buf_release(&b);
}

static void test_buf_limit(void)
{
    struct buf b;
    buf_init(&b, 10);
    CHECK_OK(buf_append(&b, "0123456789", 10));
    CHECK_ERR(buf_append_u8(&b, 'x'), ASPEN_E_TOO_LARGE);
    CHECK_EQ(b.len, 10);
    CHECK(b.cap <= 10);
    buf_clear(&b);
    CHECK_OK(buf_printf(&b, "%s", "0123456789")); /* exactly the limit: no room for a NUL */
    CHECK_EQ(b.len, 10);
    CHECK_MEM_EQ(b.data, "0123456789", 10);
    buf_clear(&b);
    CHECK_OK(buf_printf(&b, "%d", 12345));
    CHECK_OK(buf_printf(&b, "%s", "abcde")); /* the last 5 bytes, again without a NUL */
    CHECK_MEM_EQ(b.data, "12345abcde", 10);
    buf_clear(&b);
    CHECK_ERR(buf_printf(&b, "%s", "this is longer than ten"), ASPEN_E_TOO_LARGE);
    CHECK_EQ(b.len, 0);
    CHECK_ERR(buf_reserve(&b, SIZE_MAX), ASPEN_E_TOO_LARGE);
    buf_release(&b);
}

static void test_buf_nomem_leaves_contents(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_OK(buf_append(&b, "abc", 3));
    mem_fail_at(1, 0);
    int rc = buf_reserve(&b, 4096);
    int ok = rc == ASPEN_E_NOMEM && b.len == 3 && memcmp(b.data, "abc", 3) == 0;
    buf_release(&b);
    CHECK(ok);
}

static void test_buf_steal(void)
{
    struct buf b;
    buf_init(&b, 100);
    size_t len = 1;
    CHECK(buf_steal(&b, &len) == NULL);
    CHECK_EQ(len, 0);
    CHECK_OK(buf_append(&b, "xyz", 3));
    uint8_t *p = buf_steal(&b, &len);
    CHECK(p != NULL && len == 3 && b.data == NULL && b.len == 0);
    mem_free(p);
}

static const struct test_case tests[] = {
    TEST(test_slice_order),   TEST(test_endian_round_trip),
    TEST(test_reader_bounds), TEST(test_buf_append_and_grow),
    TEST(test_buf_limit),     TEST(test_buf_nomem_leaves_contents),
    TEST(test_buf_steal),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("buf", tests);
}
