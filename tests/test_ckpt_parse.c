/* test_ckpt_parse.c: the checkpoint reader's messages (src/io/checkpoint.c,
 * ckpt_parse), word for word: each refusal names the file, the byte offset
 * and, for a record cut short, which record, so that a change to the reader
 * cannot move an offset or a record number unnoticed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "asymbp.h"
#include "io/checkpoint.h"
#include "test.h"

/* A checkpoint of version 1 with count records (the bytes rec, n), its
 * length field and CRC right, into a malloc'ed buffer of *len bytes. */
static uint8_t *forge(uint32_t count, const char *rec, size_t n, size_t *len) {
    uint8_t *b = malloc(24 + n + 4);
    *len = test_forge_checkpoint(b, count, rec, n);
    return b;
}

/* Recomputes the CRC after a change to the header. */
static void reseal(uint8_t *b, size_t len) {
    uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), b, (uInt)(len - 4));
    memcpy(b + len - 4, &crc, 4);
}

/* The message of parsing b (len bytes, taken over), or "accepted". */
static const char *parse_msg(uint8_t *b, size_t len) {
    static char msg[512];
    AsymCheckpoint ck;
    if (ckpt_parse(&ck, "mem.bin", b, len) == 0) {
        free(ck.buf), free(ck.rec), free(ck.strings);
        return "accepted";
    }
    snprintf(msg, sizeof msg, "%s", asym_last_error());
    return msg;
}

TEST(ckpt_parse_messages_exact) {
    static const struct {
        uint32_t count;
        const char *rec;
        size_t n;
        const char *want;
    } cases[] = {
        {2, "\x01\x00" "a\x03\x00\x01\x00\x00\x00" "\x01\x00", 11, "mem.bin: byte 33: record 1 runs past the end of the file"},
        {1, "\x09\x00" "ab\x03\x00", 6, "mem.bin: byte 24: record 0 runs past the end of the file"},
        {1, "\x03\x00" "a-b\x03\x00\x01\x00\x00\x00", 11, "mem.bin: byte 24: record name empty, too long, or not [A-Za-z0-9_][A-Za-z0-9._/]*"},
        {1, "\x01\x00" "a\x09\x00", 5, "mem.bin: byte 27: unknown record type"},
        {1, "\x01\x00" "a\x01\x05", 5, "mem.bin: byte 28: bad dimension count"},
        {1, "\x01\x00" "a\x06\x02\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00" "A", 22, "mem.bin: byte 28: bad dimension count"},
        {1, "\x01\x00" "a\x01\x03\x01\x00\x00\x00\x00\x00\x00\x00", 13, "mem.bin: byte 29: record 0 runs past the end of the file"},
        {1, "\x01\x00" "a\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x40" "AAAA", 25, "mem.bin: byte 37: dimension larger than the file can hold"},
        {1, "\x01\x00" "a\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff", 13, "mem.bin: byte 29: dimension larger than the file can hold"},
        {1, "\x05\x00" "epoch\x04\x00\x07\x00\x00", 12, "mem.bin: byte 33: record 0 runs past the end of the file"},
        {2, "\x01\x00" "a\x03\x00\x01\x00\x00\x00" "\x01\x00" "b\x04\x00", 14, "mem.bin: byte 38: record 1 runs past the end of the file"},
        {1, "\x01\x00" "a\x03\x00\x01\x00\x00\x00\x00", 10, "mem.bin: byte 33: bytes after the last record"},
        {2, "\x01\x00" "a\x03\x00\x01\x00\x00\x00\x01\x00" "a\x03\x00\x02\x00\x00\x00", 18, "mem.bin: record 'a' appears twice"},
        {1000000, "\x01\x00" "a\x03\x00\x01\x00\x00\x00", 9, "mem.bin: byte 12: record count larger than the file can hold"},
        {2, "\x01\x00" "a\x03\x00\x01\x00\x00\x00\x01\x00" "b\x06\x01\x02\x00\x00\x00\x00\x00\x00\x00" "hi", 24, "accepted"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *b = forge(cases[i].count, cases[i].rec, cases[i].n, &len);
        const char *msg = parse_msg(b, len);
        CHECK_MSG(!strcmp(msg, cases[i].want), "case %zu: '%s', expected '%s'", i, msg, cases[i].want);
    }
    /* the checks on the whole file, before any record */
    const char *rec = "\x01\x00" "a\x03\x00\x01\x00\x00\x00";
    size_t len;
    uint8_t *b = forge(1, rec, 9, &len);
    CHECK(!strcmp(parse_msg(b, 27), "mem.bin: 27 bytes, too short to be a checkpoint (truncated?)"));
    b = forge(1, rec, 9, &len);
    b[0] = 'X';
    CHECK(!strcmp(parse_msg(b, len), "mem.bin: not an asymbp checkpoint (bad magic number)"));
    b = forge(1, rec, 9, &len);
    CHECK(!strcmp(parse_msg(b, len - 1), "mem.bin: 36 bytes, but its header says 37: truncated (an interrupted copy?)"));
    b = forge(1, rec, 9, &len);
    b[16] = 30;
    CHECK(!strcmp(parse_msg(b, len), "mem.bin: 37 bytes, but its header says 30: corrupted or with trailing bytes"));
    b = forge(1, rec, 9, &len);
    b[30] ^= 1;
    CHECK(!strcmp(parse_msg(b, len), "mem.bin: checksum mismatch: the file is corrupted"));
    b = forge(1, rec, 9, &len);
    b[8] = 7;
    reseal(b, len);
    char want[256];
    snprintf(want, sizeof want, "mem.bin: checkpoint format version 7; this asymbp (%s) reads version %d", ASYM_VERSION, ASYM_CHECKPOINT_VERSION);
    CHECK_MSG(!strcmp(parse_msg(b, len), want), "'%s'", asym_last_error());
}
