// raw_lmdb: the C floor under larder-compare's raw LMDB contestant.
//
// The same puts, the same bytes and the same SHA-256s as the Swift raw contestant
// (Benchmarks/Compare/Sources/LeanRows.swift), written the way a C programmer would: rows built
// by hand into buffers reused across writes, OpenSSL's libcrypto for SHA-256, the LMDB C API.
// larder-compare drives it as the "C LMDB" contestant; it also runs on its own.
//
//   bash Benchmarks/Compare/c/build.sh              # builds .build-c/raw_lmdb
//   .build-c/raw_lmdb DIR < commands                # one command per line, one reply per line
//
// Commands (replies are "ok OPS NANOS P50NS P99NS WCHAR WRITE_BYTES COMMITS" for the workloads,
// WCHAR and WRITE_BYTES being the deltas of /proc/self/io over the phase):
//   bulk FIRST COUNT BATCH       transfers FIRST..FIRST+COUNT-1, BATCH per durable txn, no decisions
//   single FIRST COUNT BUDGETMS  one transfer + audit record + decision per durable commit
//   nosync FIRST COUNT BUDGETMS  the same with MDB_NOSYNC (the CPU of the path, no flush)
//   start                        callgrind: start instrumentation and zero the counters
//   dump LABEL                   callgrind: dump the counters as LABEL, stop instrumentation
//   rows INDEX SEQ TIME MODE     hex of the rows of transfer INDEX (MODE: decision | import:BATCHSTART),
//                                chained after 32 zero bytes: for the byte-equality check
//   quit
//
// The byte layouts are Larder's (docs/FORMAT.md): audit record version 1, transfer version 1,
// decision version 1; see the Swift side for the field list.

#define _GNU_SOURCE
// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but they are the lean
// path: one stack context, no algorithm fetch (the one-shot SHA256() goes through EVP there).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(label) ((void)(label))
#define RUNNING_ON_VALGRIND 0
#endif

#define ACCOUNTS 100

static void die(const char *what, int rc) {
    fprintf(stderr, "raw_lmdb: %s: %s\n", what, rc ? mdb_strerror(rc) : strerror(errno));
    exit(1);
}

#define CHECK(call)                                      \
    do {                                                 \
        int rc_ = (call);                                \
        if (rc_ != MDB_SUCCESS) die(#call, rc_);         \
    } while (0)

// MARK: Byte building

typedef struct {
    uint8_t *p;
    size_t n;
} out_t;

static inline void put_u8(out_t *o, uint8_t v) { o->p[o->n++] = v; }
static inline void put_be16(out_t *o, uint16_t v) {
    o->p[o->n++] = (uint8_t)(v >> 8);
    o->p[o->n++] = (uint8_t)v;
}
static inline void put_be32(out_t *o, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) o->p[o->n++] = (uint8_t)(v >> shift);
}
static inline void put_be64(out_t *o, uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) o->p[o->n++] = (uint8_t)(v >> shift);
}
static inline void put_raw(out_t *o, const void *bytes, size_t count) {
    memcpy(o->p + o->n, bytes, count);
    o->n += count;
}
#define PUT_LIT(o, literal) put_raw((o), (literal), sizeof(literal) - 1)

/// A UTF-8 string behind a big-endian u32 byte count.
static inline void put_str(out_t *o, const char *s, size_t count) {
    put_be32(o, (uint32_t)count);
    put_raw(o, s, count);
}
#define PUT_STR_LIT(o, literal) put_str((o), (literal), sizeof(literal) - 1)

/// Decimal digits of v into out (no terminator); returns their count.
static inline size_t fmt_u64(char *out, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

static inline void put_dec(out_t *o, uint64_t v) { o->n += fmt_u64((char *)o->p + o->n, v); }
static inline void put_sdec(out_t *o, int64_t v) {
    if (v < 0) {
        put_u8(o, '-');
        put_dec(o, (uint64_t)0 - (uint64_t)v);
    } else {
        put_dec(o, (uint64_t)v);
    }
}

/// An identifier: a prefix and a decimal number ("t-42", "acct-7").
typedef struct {
    char s[40];
    size_t n;
} id_t_;

static inline void make_id(id_t_ *id, const char *prefix, size_t prefix_count, uint64_t number) {
    memcpy(id->s, prefix, prefix_count);
    id->n = prefix_count + fmt_u64(id->s + prefix_count, number);
}
#define MAKE_ID(id, literal, number) make_id((id), (literal), sizeof(literal) - 1, (number))

static inline void put_json_str(out_t *o, const id_t_ *id) {
    put_u8(o, '"');
    put_raw(o, id->s, id->n);
    put_u8(o, '"');
}

static int64_t now_micros(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_nanos(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// MARK: The rows of one transfer

typedef struct {
    uint64_t index;
    id_t_ id, request_id, decision_id, debit, credit;
    uint64_t amount;
} spec_t;

static void make_spec(spec_t *s, uint64_t index, int64_t import_batch_start) {
    s->index = index;
    MAKE_ID(&s->id, "t-", index);
    if (import_batch_start >= 0) {
        MAKE_ID(&s->request_id, "import-", (uint64_t)import_batch_start);
    } else {
        MAKE_ID(&s->request_id, "req-", index);
    }
    MAKE_ID(&s->decision_id, "dec-", index);
    uint64_t d = index % ACCOUNTS;
    uint64_t c = (index % ACCOUNTS + 1 + (index / ACCOUNTS) % (ACCOUNTS - 1)) % ACCOUNTS;
    MAKE_ID(&s->debit, "acct-", d);
    MAKE_ID(&s->credit, "acct-", c);
    s->amount = index % 997 + 1;
}

/// SHA-256 of `count` bytes at `bytes` into 32 bytes at `out`.
static inline void sha256(const uint8_t *bytes, size_t count, uint8_t *out) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, bytes, count);
    SHA256_Final(out, &context);
}

static inline int id_less(const id_t_ *a, const id_t_ *b) {
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->s, b->s, n);
    return c < 0 || (c == 0 && a->n < b->n);
}

/// Reused buffers: audit = 0x00 ‖ record ‖ leaf ‖ chain (the leading byte is the leaf hash's
/// domain prefix, so the leaf is one SHA-256 call over contiguous bytes).
typedef struct {
    uint8_t audit[4096];
    size_t record_count;
    uint8_t transfer[512];
    size_t transfer_count;
    uint8_t decision[1024];
    size_t decision_count;
    uint8_t request[512];
    uint8_t chain_input[65];
} rows_t;

static const uint8_t *audit_value(const rows_t *r) { return r->audit + 1; }
static size_t audit_value_count(const rows_t *r) { return r->record_count + 64; }
static const uint8_t *chain_hash(const rows_t *r) { return r->audit + 1 + r->record_count + 32; }

static void build_rows(rows_t *r, const spec_t *s, uint64_t seq, int64_t time, const uint8_t prev_chain[32],
                       int with_decision) {
    // Audit record, version 1.
    out_t o = {r->audit, 0};
    put_u8(&o, 0x00);
    put_u8(&o, 1);
    put_be64(&o, seq);
    put_be64(&o, (uint64_t)time);
    PUT_STR_LIT(&o, "LEDGER_TRANSFER_POSTED");
    PUT_STR_LIT(&o, "bench-writer");
    PUT_STR_LIT(&o, "system");
    put_str(&o, s->request_id.s, s->request_id.n);
    put_u8(&o, 0);  // no trace
    if (with_decision) {
        put_u8(&o, 1);
        put_str(&o, s->decision_id.s, s->decision_id.n);
    } else {
        put_u8(&o, 0);
    }
    put_be32(&o, 3);  // refs, sorted by (kind, id) bytes: account < transfer
    const id_t_ *first = id_less(&s->debit, &s->credit) ? &s->debit : &s->credit;
    const id_t_ *second = first == &s->debit ? &s->credit : &s->debit;
    PUT_STR_LIT(&o, "account");
    put_str(&o, first->s, first->n);
    PUT_STR_LIT(&o, "account");
    put_str(&o, second->s, second->n);
    PUT_STR_LIT(&o, "transfer");
    put_str(&o, s->id.s, s->id.n);
    put_u8(&o, 0);  // failure category
    put_u8(&o, 0);  // response type
    put_u8(&o, 0);  // reason code
    size_t length_at = o.n;
    o.n += 4;
    PUT_LIT(&o, "{\"transfer_id\":");
    put_json_str(&o, &s->id);
    PUT_LIT(&o, ",\"kind\":\"single\",\"debit_account\":");
    put_json_str(&o, &s->debit);
    PUT_LIT(&o, ",\"credit_account\":");
    put_json_str(&o, &s->credit);
    PUT_LIT(&o, ",\"amount\":");
    put_dec(&o, s->amount);
    PUT_LIT(&o, ",\"ledger\":\"credits.cents\",\"code\":0,\"target\":null}");
    out_t patch = {r->audit, length_at};
    put_be32(&patch, (uint32_t)(o.n - length_at - 4));
    r->record_count = o.n - 1;

    uint8_t *leaf = r->audit + o.n;
    sha256(r->audit, o.n, leaf);
    r->chain_input[0] = 0x01;
    memcpy(r->chain_input + 1, prev_chain, 32);
    memcpy(r->chain_input + 33, leaf, 32);
    sha256(r->chain_input, 65, leaf + 32);

    // Transfer, version 1.
    o = (out_t){r->transfer, 0};
    put_u8(&o, 1);
    PUT_STR_LIT(&o, "single");
    put_str(&o, s->debit.s, s->debit.n);
    put_str(&o, s->credit.s, s->credit.n);
    put_be64(&o, s->amount);
    PUT_STR_LIT(&o, "credits.cents");
    put_be16(&o, 0);  // code
    put_be32(&o, 0);  // refs
    put_u8(&o, 0);    // target
    put_be64(&o, (uint64_t)time);
    put_be64(&o, seq);
    r->transfer_count = o.n;

    if (!with_decision) {
        r->decision_count = 0;
        return;
    }
    // The request's fingerprint: SHA-256 of its canonical JSON (sorted keys).
    o = (out_t){r->request, 0};
    PUT_LIT(&o, "{\"actor\":{\"id\":\"bench-writer\",\"role\":\"system\"},\"operation\":\"ledger.transfer\","
                "\"request\":{\"amount\":");
    put_dec(&o, s->amount);
    PUT_LIT(&o, ",\"code\":0,\"creditAccount\":");
    put_json_str(&o, &s->credit);
    PUT_LIT(&o, ",\"debitAccount\":");
    put_json_str(&o, &s->debit);
    PUT_LIT(&o, ",\"id\":");
    put_json_str(&o, &s->id);
    PUT_LIT(&o, ",\"kind\":\"single\",\"refs\":[]}}");
    size_t request_count = o.n;

    // Decision, version 1: fingerprint, time, seq, operation, the stored result (JSON).
    o = (out_t){r->decision, 0};
    put_u8(&o, 1);
    sha256(r->request, request_count, o.p + o.n);
    o.n += 32;
    put_be64(&o, (uint64_t)time);
    put_be64(&o, seq);
    PUT_STR_LIT(&o, "ledger.transfer");
    length_at = o.n;
    o.n += 4;
    PUT_LIT(&o, "{\"created\":{\"_0\":{\"amount\":");
    put_dec(&o, s->amount);
    PUT_LIT(&o, ",\"auditSeq\":");
    put_dec(&o, seq);
    PUT_LIT(&o, ",\"code\":0,\"creditAccount\":");
    put_json_str(&o, &s->credit);
    PUT_LIT(&o, ",\"debitAccount\":");
    put_json_str(&o, &s->debit);
    PUT_LIT(&o, ",\"id\":");
    put_json_str(&o, &s->id);
    PUT_LIT(&o, ",\"kind\":\"single\",\"ledger\":\"credits.cents\",\"refs\":[],\"timeMicros\":");
    put_sdec(&o, time);
    PUT_LIT(&o, "}}}");
    patch = (out_t){r->decision, length_at};
    put_be32(&patch, (uint32_t)(o.n - length_at - 4));
    r->decision_count = o.n;
}

// MARK: The store

static MDB_env *env;
static MDB_dbi dbi_audit, dbi_transfers, dbi_decisions;
static rows_t rows;
static uint64_t head_seq;
static uint8_t head_chain[32];

static void open_store(const char *dir) {
    mkdir(dir, 0755);
    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_maxdbs(env, 4));
    // Valgrind cannot reserve a 64 GiB map; 8 GiB holds the largest runs measured under it.
    CHECK(mdb_env_set_mapsize(env, (size_t)(RUNNING_ON_VALGRIND ? 8 : 64) << 30));
    CHECK(mdb_env_open(env, dir, MDB_NOTLS, 0644));
    MDB_txn *txn;
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK(mdb_dbi_open(txn, "audit", MDB_CREATE, &dbi_audit));
    CHECK(mdb_dbi_open(txn, "transfers", MDB_CREATE, &dbi_transfers));
    CHECK(mdb_dbi_open(txn, "decisions", MDB_CREATE, &dbi_decisions));
    CHECK(mdb_txn_commit(txn));
}

/// The chain head, read from the log itself (cursor MDB_LAST), as the Swift contestant does.
static void read_head(MDB_txn *txn) {
    MDB_cursor *cursor;
    CHECK(mdb_cursor_open(txn, dbi_audit, &cursor));
    MDB_val key, data;
    int rc = mdb_cursor_get(cursor, &key, &data, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        head_seq = 0;
        memset(head_chain, 0, 32);
    } else {
        if (rc != MDB_SUCCESS) die("mdb_cursor_get", rc);
        const uint8_t *k = key.mv_data;
        uint64_t seq = 0;
        for (int i = 0; i < 8; i++) seq = (seq << 8) | k[i];
        head_seq = seq;
        memcpy(head_chain, (const uint8_t *)data.mv_data + data.mv_size - 32, 32);
    }
    mdb_cursor_close(cursor);
}

static void write_rows(MDB_txn *txn, const spec_t *s, int with_decision) {
    uint64_t seq = head_seq + 1;
    build_rows(&rows, s, seq, now_micros(), head_chain, with_decision);
    uint8_t seq_key[8];
    out_t o = {seq_key, 0};
    put_be64(&o, seq);
    MDB_val key = {8, seq_key}, value = {audit_value_count(&rows), (void *)audit_value(&rows)};
    CHECK(mdb_put(txn, dbi_audit, &key, &value, MDB_APPEND));
    key = (MDB_val){s->id.n, (void *)s->id.s};
    value = (MDB_val){rows.transfer_count, rows.transfer};
    CHECK(mdb_put(txn, dbi_transfers, &key, &value, MDB_NOOVERWRITE));
    if (with_decision) {
        key = (MDB_val){s->decision_id.n, (void *)s->decision_id.s};
        value = (MDB_val){rows.decision_count, rows.decision};
        CHECK(mdb_put(txn, dbi_decisions, &key, &value, MDB_NOOVERWRITE));
    }
    head_seq = seq;
    memcpy(head_chain, chain_hash(&rows), 32);
}

// MARK: Measuring

/// This process's I/O counters from /proc/self/io: `wchar`, the bytes handed to write system
/// calls (for LMDB without MDB_WRITEMAP: the pages a commit writes, and its meta page), and
/// `write_bytes`, the page cache accounting, which counts whole (possibly large) folios when a
/// write dirties part of one, so it overstates small writes on this kernel.
typedef struct {
    uint64_t wchar, write_bytes;
} io_t;

static io_t io_counters(void) {
    io_t io = {0, 0};
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return io;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        uint64_t value;
        if (sscanf(line, "wchar: %" SCNu64, &value) == 1) io.wchar = value;
        if (sscanf(line, "write_bytes: %" SCNu64, &value) == 1) io.write_bytes = value;
    }
    fclose(f);
    return io;
}

static int compare_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/// Nearest rank, as the Swift harness computes it.
static int64_t percentile(int64_t *samples, size_t count, double p) {
    if (count == 0) return 0;
    qsort(samples, count, sizeof *samples, compare_i64);
    size_t rank = (size_t)(p * (double)count);
    if ((double)rank < p * (double)count) rank++;
    if (rank < 1) rank = 1;
    if (rank > count) rank = count;
    return samples[rank - 1];
}

static void reply(size_t ops, int64_t nanos, int64_t *latencies, size_t samples, io_t before, io_t after, size_t commits) {
    int64_t p50 = percentile(latencies, samples, 0.50), p99 = percentile(latencies, samples, 0.99);
    printf("ok %zu %" PRId64 " %" PRId64 " %" PRId64 " %" PRIu64 " %" PRIu64 " %zu\n", ops, nanos, p50, p99,
           after.wchar - before.wchar, after.write_bytes - before.write_bytes, commits);
    fflush(stdout);
}

static void bulk(uint64_t first, uint64_t count, uint64_t batch) {
    size_t batches = (size_t)((count + batch - 1) / batch);
    int64_t *latencies = calloc(batches ? batches : 1, sizeof *latencies);
    io_t before = io_counters();
    int64_t start = now_nanos();
    size_t done = 0;
    for (uint64_t batch_start = first; batch_start < first + count; batch_start += batch) {
        int64_t began = now_nanos();
        MDB_txn *txn;
        CHECK(mdb_txn_begin(env, NULL, 0, &txn));
        read_head(txn);
        uint64_t end = batch_start + batch < first + count ? batch_start + batch : first + count;
        for (uint64_t index = batch_start; index < end; index++) {
            spec_t s;
            make_spec(&s, index, (int64_t)batch_start);
            write_rows(txn, &s, 0);
        }
        CHECK(mdb_txn_commit(txn));
        latencies[done++] = now_nanos() - began;
    }
    int64_t elapsed = now_nanos() - start;
    reply((size_t)count, elapsed, latencies, done, before, io_counters(), done);
    free(latencies);
}

static void single(uint64_t first, uint64_t count, int64_t budget_ms, int sync) {
    if (!sync) CHECK(mdb_env_set_flags(env, MDB_NOSYNC, 1));
    int64_t *latencies = calloc(count ? count : 1, sizeof *latencies);
    io_t before = io_counters();
    int64_t start = now_nanos();
    size_t done = 0;
    for (uint64_t index = first; index < first + count; index++) {
        int64_t began = now_nanos();
        if (began - start > budget_ms * 1000000) break;
        spec_t s;
        make_spec(&s, index, -1);
        MDB_txn *txn;
        CHECK(mdb_txn_begin(env, NULL, 0, &txn));
        MDB_val key = {s.decision_id.n, s.decision_id.s}, found;
        int rc = mdb_get(txn, dbi_decisions, &key, &found);
        if (rc != MDB_NOTFOUND) die("decision exists", rc);
        read_head(txn);
        write_rows(txn, &s, 1);
        CHECK(mdb_txn_commit(txn));
        latencies[done++] = now_nanos() - began;
    }
    int64_t elapsed = now_nanos() - start;
    io_t after = io_counters();
    if (!sync) {
        CHECK(mdb_env_set_flags(env, MDB_NOSYNC, 0));
        CHECK(mdb_env_sync(env, 1));
    }
    reply(done, elapsed, latencies, done, before, after, done);
    free(latencies);
}

static void print_hex(const uint8_t *bytes, size_t count) {
    for (size_t i = 0; i < count; i++) printf("%02x", bytes[i]);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: raw_lmdb DIR < commands (see the comment at the top of raw_lmdb.c)\n");
        return 2;
    }
    int store_open = 0;
    char line[512];
    while (fgets(line, sizeof line, stdin)) {
        uint64_t a, b, c;
        int64_t t;
        char label[400];
        if (sscanf(line, "bulk %" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b, &c) == 3) {
            if (!store_open++) open_store(argv[1]);
            bulk(a, b, c);
        } else if (sscanf(line, "single %" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b, &c) == 3) {
            if (!store_open++) open_store(argv[1]);
            single(a, b, (int64_t)c, 1);
        } else if (sscanf(line, "nosync %" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b, &c) == 3) {
            if (!store_open++) open_store(argv[1]);
            single(a, b, (int64_t)c, 0);
        } else if (strncmp(line, "start", 5) == 0) {
            CALLGRIND_START_INSTRUMENTATION;
            CALLGRIND_ZERO_STATS;
            printf("ok\n");
            fflush(stdout);
        } else if (sscanf(line, "dump %399[^\n]", label) == 1) {
            CALLGRIND_DUMP_STATS_AT(label);
            CALLGRIND_STOP_INSTRUMENTATION;
            printf("ok\n");
            fflush(stdout);
        } else if (sscanf(line, "rows %" SCNu64 " %" SCNu64 " %" SCNd64 " %399s", &a, &b, &t, label) == 4) {
            int with_decision = strcmp(label, "decision") == 0;
            int64_t batch_start = with_decision ? -1 : strtoll(label + strlen("import:"), NULL, 10);
            spec_t s;
            make_spec(&s, a, batch_start);
            uint8_t zero[32] = {0};
            build_rows(&rows, &s, b, t, zero, with_decision);
            printf("audit ");
            print_hex(audit_value(&rows), audit_value_count(&rows));
            printf(" transfer ");
            print_hex(rows.transfer, rows.transfer_count);
            printf(" decision ");
            if (with_decision) print_hex(rows.decision, rows.decision_count); else printf("-");
            printf("\n");
            fflush(stdout);
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        } else {
            fprintf(stderr, "raw_lmdb: unknown command: %s", line);
            return 2;
        }
    }
    if (store_open) mdb_env_close(env);
    return 0;
}
