/*
 * The node identity file (src/node/identity.h): creation (mode, directories, atomic
 * placement), reload of the same key, refusal of loose permissions, damaged, truncated or
 * foreign files — and that an existing file is never rewritten.
 */
#include "test.h"

#include "base/hlc.h"
#include "node/identity.h"

#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];
static char data_dir[128];
static char key_path[192];
static char err[512];

static void make_root(void)
{
    snprintf(root, sizeof(root), "/tmp/aspen-identity-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(data_dir, sizeof(data_dir), "%s/a/b/data", root);
    snprintf(key_path, sizeof(key_path), "%s/%s", data_dir, IDENTITY_FILE_NAME);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_root(void)
{
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static long read_file(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, out, cap);
    close(fd);
    return n;
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, len);
    close(fd);
    return chmod(path, mode) == 0 && n == (ssize_t)len ? 0 : -1;
}

static void test_create_then_reload(void)
{
    make_root();
    struct node_identity a, b;
    int rc = identity_load_or_create(data_dir, &a, err, sizeof(err));
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(a.was_created);
    struct stat st;
    CHECK(stat(key_path, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(st.st_size, IDENTITY_FILE_BYTES);
    CHECK(stat(data_dir, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0700);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", key_path);
    CHECK(access(tmp, F_OK) != 0); /* the temp file was renamed, not left behind */

    rc = identity_load_or_create(data_dir, &b, err, sizeof(err));
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(!b.was_created);
    CHECK_MEM_EQ(a.public_key, b.public_key, sizeof(a.public_key));
    CHECK_MEM_EQ(a.secret_key, b.secret_key, sizeof(a.secret_key));
    CHECK_EQ_U64(a.raft_id, b.raft_id);
    CHECK_EQ_U64(a.raft_id, hlc_node_id_from_key(a.public_key, sizeof(a.public_key)));
    CHECK_EQ(strlen(a.id), 64);
    CHECK_EQ(strspn(a.id, "0123456789abcdef"), 64);
    CHECK_EQ(strlen(a.short_id), 16);
    CHECK(strncmp(a.id, a.short_id, 16) == 0);

    /* The key pair is libsodium's: what one signs the other verifies. */
    uint8_t sig[crypto_sign_BYTES];
    static const uint8_t msg[] = "aspen";
    CHECK(crypto_sign_detached(sig, NULL, msg, sizeof(msg), b.secret_key) == 0);
    CHECK(crypto_sign_verify_detached(sig, msg, sizeof(msg), a.public_key) == 0);

    /* The file's first lines name the node. */
    char text[IDENTITY_FILE_BYTES + 1] = {0};
    CHECK_EQ(read_file(key_path, text, IDENTITY_FILE_BYTES), IDENTITY_FILE_BYTES);
    CHECK(strncmp(text, "aspen-identity-v1\npublic-key ", 29) == 0);
    CHECK(strncmp(text + 29, a.id, 64) == 0);

    identity_release(&a);
    identity_release(&b);
    static const struct node_identity zero;
    CHECK_MEM_EQ(&a, &zero, sizeof(zero));
    remove_root();
}

static void test_two_nodes_differ(void)
{
    make_root();
    struct node_identity a, b;
    char other[160];
    snprintf(other, sizeof(other), "%s/other", root);
    CHECK_OK(identity_load_or_create(data_dir, &a, err, sizeof(err)));
    CHECK_OK(identity_load_or_create(other, &b, err, sizeof(err)));
    CHECK(memcmp(a.public_key, b.public_key, sizeof(a.public_key)) != 0);
    CHECK(a.raft_id != b.raft_id);
    identity_release(&a);
    identity_release(&b);
    remove_root();
}

/* Loads must fail with want and a message naming the file, leaving the bytes unchanged. */
static int expect_refused(int want, const char *needle)
{
    char before[1024], after[1024];
    long n1 = read_file(key_path, before, sizeof(before));
    struct node_identity id;
    int rc = identity_load_or_create(data_dir, &id, err, sizeof(err));
    long n2 = read_file(key_path, after, sizeof(after));
    if (rc != want) {
        printf("    got %s (%s), want %s\n", aspen_err_name(rc), err, aspen_err_name(want));
        return -1;
    }
    if (!strstr(err, key_path) || !strstr(err, needle)) {
        printf("    message \"%s\" lacks the path or \"%s\"\n", err, needle);
        return -1;
    }
    if (n1 != n2 || (n1 > 0 && memcmp(before, after, (size_t)n1) != 0)) {
        printf("    the file was changed\n");
        return -1;
    }
    static const struct node_identity zero;
    if (memcmp(&id, &zero, sizeof(zero)) != 0) {
        printf("    the failed load left data in *out\n");
        return -1;
    }
    return 0;
}

static void test_loose_permissions_refused(void)
{
    make_root();
    struct node_identity a;
    CHECK_OK(identity_load_or_create(data_dir, &a, err, sizeof(err)));
    identity_release(&a);
    CHECK(chmod(key_path, 0644) == 0);
    CHECK_OK(expect_refused(ASPEN_E_PERMISSION, "permissions 0644 are too open"));
    char want[512];
    snprintf(want, sizeof(want),
             "identity: %s: permissions 0644 are too open: the secret key must not be accessible "
             "to group or others (chmod 600 it)",
             key_path);
    CHECK_STR_EQ(err, want);
    CHECK(chmod(key_path, 0640) == 0);
    CHECK_OK(expect_refused(ASPEN_E_PERMISSION, "0640"));
    CHECK(chmod(key_path, 0602) == 0);
    CHECK_OK(expect_refused(ASPEN_E_PERMISSION, "0602"));
    CHECK(chmod(key_path, 0400) == 0); /* read-only for the owner is fine */
    CHECK_OK(identity_load_or_create(data_dir, &a, err, sizeof(err)));
    identity_release(&a);
    remove_root();
}

static void test_damage_refused(void)
{
    make_root();
    struct node_identity a;
    CHECK_OK(identity_load_or_create(data_dir, &a, err, sizeof(err)));
    identity_release(&a);
    char good[IDENTITY_FILE_BYTES], bad[IDENTITY_FILE_BYTES + 8];
    CHECK_EQ(read_file(key_path, good, sizeof(good)), IDENTITY_FILE_BYTES);

    /* A flipped seed digit: the checksum catches it, and the secret is not in the message. */
    memcpy(bad, good, sizeof(good));
    size_t seed_at = 18 + 76 + 12;
    bad[seed_at] = bad[seed_at] == '0' ? '1' : '0';
    CHECK_OK(write_file(key_path, bad, sizeof(good), 0600));
    CHECK_OK(expect_refused(ASPEN_E_CORRUPT, "checksum mismatch"));
    CHECK(strstr(err, "secret-seed") == NULL);
    char seed_hex[65];
    memcpy(seed_hex, good + seed_at, 64);
    seed_hex[64] = '\0';
    CHECK(strstr(err, seed_hex) == NULL);

    /* Truncated anywhere, down to empty. */
    CHECK_OK(write_file(key_path, good, 100, 0600));
    CHECK_OK(expect_refused(ASPEN_E_TRUNCATED, "truncated: 100 bytes of 187"));
    CHECK_OK(write_file(key_path, good, IDENTITY_FILE_BYTES - 1, 0600));
    CHECK_OK(expect_refused(ASPEN_E_TRUNCATED, "truncated"));
    CHECK_OK(write_file(key_path, good, 0, 0600));
    CHECK_OK(expect_refused(ASPEN_E_TRUNCATED, "truncated: 0 bytes"));

    /* Longer, foreign, upper-case hex, broken labels. */
    memcpy(bad, good, sizeof(good));
    memcpy(bad + sizeof(good), "extra\n", 6);
    CHECK_OK(write_file(key_path, bad, sizeof(good) + 6, 0600));
    CHECK_OK(expect_refused(ASPEN_E_MALFORMED, "unexpected bytes"));
    CHECK_OK(write_file(key_path, "-----BEGIN PRIVATE KEY-----\n", 28, 0600));
    CHECK_OK(expect_refused(ASPEN_E_MALFORMED, "not an Aspen identity file"));
    memcpy(bad, good, sizeof(good));
    memcpy(bad + 18, "public_key ", 11);
    CHECK_OK(write_file(key_path, bad, sizeof(good), 0600));
    CHECK_OK(expect_refused(ASPEN_E_MALFORMED, "lines are not"));

    /* A checksum line that is not hex, and one that is hex but wrong. */
    memcpy(bad, good, sizeof(good));
    bad[IDENTITY_FILE_BYTES - 2] = 'x';
    CHECK_OK(write_file(key_path, bad, sizeof(good), 0600));
    CHECK_OK(expect_refused(ASPEN_E_MALFORMED, "crc32c line"));
    bad[IDENTITY_FILE_BYTES - 2] = good[IDENTITY_FILE_BYTES - 2] == 'a' ? 'b' : 'a';
    CHECK_OK(write_file(key_path, bad, sizeof(good), 0600));
    CHECK_OK(expect_refused(ASPEN_E_CORRUPT, "checksum mismatch"));

    /* The original file loads again. */
    CHECK_OK(write_file(key_path, good, sizeof(good), 0600));
    CHECK_OK(identity_load_or_create(data_dir, &a, err, sizeof(err)));
    CHECK(!a.was_created);
    identity_release(&a);
    remove_root();
}

static void test_seed_must_derive_public_key(void)
{
    /* A well-formed file with a valid checksum whose public key belongs to another seed. */
    uint8_t seed[IDENTITY_SEED_BYTES], pk[IDENTITY_PUBLIC_KEY_BYTES];
    uint8_t sk[IDENTITY_SECRET_KEY_BYTES];
    memset(seed, 7, sizeof(seed));
    CHECK(sodium_init() >= 0);
    CHECK(crypto_sign_seed_keypair(pk, sk, seed) == 0);
    char text[IDENTITY_FILE_BYTES];
    identity_encode(seed, pk, text);
    struct node_identity id;
    char why[160];
    CHECK_OK(identity_decode(text, sizeof(text), &id, why, sizeof(why)));
    CHECK_MEM_EQ(id.public_key, pk, sizeof(pk));
    CHECK_MEM_EQ(id.secret_key, sk, sizeof(sk));
    identity_release(&id);

    pk[0] ^= 1;
    identity_encode(seed, pk, text);
    CHECK_ERR(identity_decode(text, sizeof(text), &id, why, sizeof(why)), ASPEN_E_CORRUPT);
    CHECK_STR_EQ(why, "the secret seed does not derive the stored public key");

    /* Every single-byte change of a valid file is refused. */
    pk[0] ^= 1;
    identity_encode(seed, pk, text);
    for (size_t i = 0; i < sizeof(text); i++) {
        char saved = text[i];
        text[i] = (char)(saved ^ 0x01);
        int rc = identity_decode(text, sizeof(text), &id, why, sizeof(why));
        text[i] = saved;
        CHECK_MSG(rc != 0, "a change at byte %zu was accepted", i);
    }
}

static void test_existing_file_never_overwritten(void)
{
    make_root();
    /* Garbage where the identity should be: refused, and left exactly as it was. */
    struct node_identity a;
    CHECK_OK(identity_load_or_create(data_dir, &a, err, sizeof(err)));
    identity_release(&a);
    CHECK_OK(write_file(key_path, "not a key\n", 10, 0600));
    CHECK_OK(expect_refused(ASPEN_E_MALFORMED, "not an Aspen identity file"));

    /* A directory in the file's place. */
    CHECK(unlink(key_path) == 0);
    CHECK(mkdir(key_path, 0700) == 0);
    struct node_identity b;
    CHECK(identity_load_or_create(data_dir, &b, err, sizeof(err)) != 0);
    CHECK(strstr(err, key_path) != NULL);
    CHECK(rmdir(key_path) == 0);
    remove_root();
}

static void test_stale_temp_file_is_replaced(void)
{
    make_root();
    struct node_identity a;
    CHECK_OK(identity_load_or_create(data_dir, &a, err, sizeof(err))); /* makes the dirs */
    identity_release(&a);
    CHECK(unlink(key_path) == 0);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", key_path);
    CHECK_OK(write_file(tmp, "half", 4, 0600)); /* a crash mid-creation left this */
    CHECK_OK(identity_load_or_create(data_dir, &a, err, sizeof(err)));
    CHECK(a.was_created);
    CHECK(access(tmp, F_OK) != 0);
    identity_release(&a);
    remove_root();
}

static void test_data_dir_problems(void)
{
    make_root();
    char file_dir[160];
    snprintf(file_dir, sizeof(file_dir), "%s/plainfile", root);
    CHECK_OK(write_file(file_dir, "x", 1, 0600));
    struct node_identity a;
    CHECK(identity_load_or_create(file_dir, &a, err, sizeof(err)) != 0);
    CHECK_MSG(strstr(err, file_dir) != NULL, "%s", err);
    char below[192];
    snprintf(below, sizeof(below), "%s/sub", file_dir);
    CHECK(identity_load_or_create(below, &a, err, sizeof(err)) != 0);
    CHECK_MSG(strstr(err, "cannot create directory") != NULL, "%s", err);
    CHECK_ERR(identity_load_or_create("", &a, err, sizeof(err)), ASPEN_E_INVALID);
    CHECK_STR_EQ(err, "identity: the data directory path is empty");
    remove_root();
}

static const struct test_case tests[] = {
    TEST(test_create_then_reload),          TEST(test_two_nodes_differ),
    TEST(test_loose_permissions_refused),   TEST(test_damage_refused),
    TEST(test_seed_must_derive_public_key), TEST(test_existing_file_never_overwritten),
    TEST(test_stale_temp_file_is_replaced), TEST(test_data_dir_problems),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("node_identity", tests);
}
