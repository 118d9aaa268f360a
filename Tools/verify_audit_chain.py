#!/usr/bin/env python3
"""Verify a Larder audit chain without Larder.

Usage: python3 Tools/verify_audit_chain.py [--json] [--mdb-dump PATH] STORE_DIR

Reads the store with LMDB's own `mdb_dump -a` (package lmdb-utils; hex output, all tables in
one read transaction) and recomputes every hash from docs/FORMAT.md, so that a bug in Larder's
Swift code cannot hide itself: nothing here shares code with the writer.

Checks, for every record of the `audit` table:
  - the key is an 8-byte big-endian seq, and seqs run 1, 2, 3, ... without gaps;
  - the value splits into recordBytes || leafHash (32) || chainHash (32);
  - leafHash  == SHA-256(0x00 || recordBytes);
  - chainHash == SHA-256(0x01 || previous chainHash || leafHash), previous of seq 1 = 32 zero bytes;
  - recordBytes decode as exactly one version-1 record whose own seq equals the key;
and, in a schema-1 store, that meta `chain_head` (u64 seq || 32-byte hash) names the last record
and its chain hash (schema 2 keeps no chain head: the head is the last record, and meta must not
hold one).

Output: one line per problem, then `OK <count> records, head <seq> <hash>` or
`BROKEN at seq <n>: <reason>`. With --json, one JSON object instead.
Exit status: 0 intact, 1 broken, 2 usage or I/O error (including a store whose
format_version or schema_version this verifier does not know: it refuses rather than guesses).
"""

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys

# The audit format this verifier understands. A store or record with another version is not
# "broken", it is unknown to us; see the versioning rules in docs/FORMAT.md.
FORMAT_VERSION = 1

# Role names an audit record v1 may carry; Larder's decoder rejects any other.
ROLES = {"accountManager", "admin", "system"}

# Larder's own decoder refuses records with more refs than this.
REFS_COUNT_MAX = 64

HASH_SIZE = 32
GENESIS = bytes(HASH_SIZE)


class UsageError(Exception):
    """Anything that prevents verification from starting: exit status 2."""


class Malformed(Exception):
    """A record's bytes are not a valid version-1 record."""


# ---------------------------------------------------------------------------------------------
# Reading mdb_dump output
# ---------------------------------------------------------------------------------------------

def unhex(line):
    r"""Decode one data line of plain `mdb_dump` (format=bytevalue): a space, then two hex
    digits per byte.

    The printable format (`mdb_dump -p`) is NOT used: LMDB up to 0.9.24 (Debian/Ubuntu's
    lmdb-utils) prints a backslash byte as a lone `\`, so `\85` can mean the byte 0x85 or
    the bytes 0x5c '8' '5'. Hashes are binary and contain 0x5c often; only hex is unambiguous.
    """
    if not line.startswith(b" "):
        raise ValueError("a data line does not start with a space")
    try:
        return bytes.fromhex(line[1:].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("a data line is not hexadecimal")


def dump_tables(mdb_dump, store_dir, wanted, seen):
    """Yield (table, key, value) for the tables in `wanted`, in key order; add every table
    name met to `seen`.

    One `mdb_dump -a` run dumps every table inside ONE read transaction. Two separate runs
    (`-s audit`, then `-s meta`) would read two snapshots, and a writer committing between
    them would make meta's chain head look wrong although nothing is. Output is streamed so
    a large store does not have to fit in memory as text.
    """
    try:
        proc = subprocess.Popen([mdb_dump, "-a", store_dir], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except OSError as error:
        raise UsageError("cannot run %s: %s" % (mdb_dump, error))

    table, in_data, pending_key = None, False, None
    try:
        for raw in proc.stdout:
            line = raw.rstrip(b"\n")
            if not in_data:
                if line.startswith(b"database="):
                    table = line[len(b"database="):].decode("utf-8", "replace")
                    seen.add(table)
                elif line.startswith(b"format=") and line != b"format=bytevalue":
                    raise UsageError("mdb_dump wrote %r, expected format=bytevalue" % line)
                elif line == b"HEADER=END":
                    in_data, pending_key = True, None
                continue
            if line == b"DATA=END":
                if pending_key is not None:
                    raise UsageError("mdb_dump output for %s ends after a key" % table)
                in_data = False
                continue
            try:
                item = unhex(line)
            except ValueError as error:
                raise UsageError("cannot parse mdb_dump output for %s: %s" % (table, error))
            # Data lines alternate: key, value, key, value, ...
            if pending_key is None:
                pending_key = item
            else:
                if table in wanted:
                    yield table, pending_key, item
                pending_key = None
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.stderr.close()
        status = proc.wait()
    if status != 0:
        raise UsageError("mdb_dump failed (exit %d): %s" % (status, stderr or "no message"))
    if in_data:
        raise UsageError("mdb_dump output ended inside the data of %s" % table)


# ---------------------------------------------------------------------------------------------
# The record format (docs/FORMAT.md, "Audit record, version 1")
# ---------------------------------------------------------------------------------------------

class Reader:
    """Bounds-checked reads of the big-endian, length-prefixed primitives."""

    def __init__(self, data):
        self.data, self.offset = data, 0

    def take(self, count):
        if count > len(self.data) - self.offset:
            raise Malformed("needed %d bytes at offset %d, %d left"
                            % (count, self.offset, len(self.data) - self.offset))
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        raw = self.take(self.u32())
        try:
            return raw.decode("utf-8")  # strict: rejects overlong forms and surrogates, as Swift does
        except UnicodeDecodeError:
            raise Malformed("a string is not valid UTF-8")

    def optional_string(self):
        flag = self.u8()
        if flag == 0:
            return None
        if flag == 1:
            return self.string()
        raise Malformed("an optional's presence flag is %d" % flag)


def decode_record(data):
    """Decode recordBytes; raise Malformed unless they are exactly one version-1 record."""
    r = Reader(data)
    version = r.u8()
    if version != FORMAT_VERSION:
        raise Malformed("audit record format version %d is not supported (expected %d)"
                        % (version, FORMAT_VERSION))
    record = {
        "version": version,
        "seq": r.u64(),
        "time_micros": r.i64(),
        "event": r.string(),
        "actor_id": r.string(),
        "actor_role": r.string(),
        "request_id": r.string(),
        "trace_id": r.optional_string(),
        "decision_id": r.optional_string(),
    }
    if record["actor_role"] not in ROLES:
        raise Malformed("unknown role %s" % record["actor_role"])
    count = r.u32()
    if count > REFS_COUNT_MAX:
        raise Malformed("%d correlation refs" % count)
    refs = []
    for _ in range(count):
        kind = r.string()
        refs.append((kind, r.string()))
    # The order is part of the hashed bytes, so it must be the canonical one: sorted by the
    # UTF-8 bytes of (kind, id), no duplicates.
    keys = [(k.encode("utf-8"), i.encode("utf-8")) for k, i in refs]
    if keys != sorted(set(keys)):
        raise Malformed("correlation refs are not sorted and unique")
    record["refs"] = ["%s:%s" % ref for ref in refs]
    record["failure_category"] = r.optional_string()
    record["response_type"] = r.optional_string()
    record["reason_code"] = r.optional_string()
    record["payload"] = r.string()
    if r.offset != len(data):
        raise Malformed("%d unexpected trailing bytes" % (len(data) - r.offset))
    return record


def leaf_hash(record_bytes):
    # The 0x00 / 0x01 prefixes keep a leaf from ever being mistaken for a chain link.
    return hashlib.sha256(b"\x00" + record_bytes).digest()


def chain_hash(previous, leaf):
    return hashlib.sha256(b"\x01" + previous + leaf).digest()


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.records = 0
        self.head_seq = 0
        self.head_hash = GENESIS
        self.problems = []

    def add(self, kind, seq, table, detail):
        self.problems.append({"kind": kind, "seq": seq, "table": table, "detail": detail})

    @property
    def intact(self):
        return not self.problems

    @property
    def first_broken_seq(self):
        seqs = [p["seq"] for p in self.problems if p["seq"] is not None]
        return min(seqs) if seqs else None


def verify(entries):
    """Walk (table, key, value) triples: audit records in key order, then meta."""
    report = Report()
    meta = {}
    previous_seq = 0
    previous_chain = GENESIS
    for table, key, value in entries:
        if table == "meta":
            meta[key] = value
            continue
        report.records += 1
        if len(key) != 8:
            # Without a readable key there is no seq to name; name the position instead.
            seq = previous_seq + 1
            report.add("malformed", seq, "audit", "the key is %d bytes, not 8: %s" % (len(key), key.hex()))
        else:
            seq = struct.unpack(">Q", key)[0]
            if seq != previous_seq + 1:
                report.add("gap", seq, "audit", "expected seq %d, found %d" % (previous_seq + 1, seq))
        previous_seq = seq
        if len(value) <= 2 * HASH_SIZE:
            report.add("malformed", seq, "audit", "an audit value of %d bytes is too short" % len(value))
            continue
        record_bytes = value[:-2 * HASH_SIZE]
        stored_leaf = value[-2 * HASH_SIZE:-HASH_SIZE]
        stored_chain = value[-HASH_SIZE:]
        computed_leaf = leaf_hash(record_bytes)
        if computed_leaf != stored_leaf:
            report.add("leafHashMismatch", seq, "audit",
                       "the record's bytes hash to %s, stored leafHash is %s"
                       % (computed_leaf.hex(), stored_leaf.hex()))
        # The link uses the STORED leaf: a record edited together with its leaf hash is caught
        # here, one edited alone is caught above.
        computed_chain = chain_hash(previous_chain, stored_leaf)
        if computed_chain != stored_chain:
            report.add("chainHashMismatch", seq, "audit",
                       "expected chainHash %s, stored %s" % (computed_chain.hex(), stored_chain.hex()))
        # Continue from the stored hash so that one damaged record is reported once, not at
        # every record after it (Larder's verify does the same).
        previous_chain = stored_chain
        try:
            record = decode_record(record_bytes)
            if record["seq"] != seq:
                report.add("seqMismatch", seq, "audit", "the record says seq %d" % record["seq"])
        except Malformed as error:
            report.add("malformed", seq, "audit", str(error))
    report.head_seq, report.head_hash = previous_seq, previous_chain
    return report, meta


def meta_key(name):
    # meta keys are order-preserving string keys: UTF-8 (0x00 escaped as 0x00 0xFF), then 0x00 0x00.
    return name.encode("utf-8").replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def check_format_version(meta):
    """Refuse (exit 2) a store whose declared audit format this verifier does not know."""
    declared = meta.get(meta_key("format_version"))
    if declared is not None and declared != bytes([FORMAT_VERSION]):
        raise UsageError("the store declares audit format_version %s; this verifier knows only %d "
                         "and refuses to guess" % (declared.hex(), FORMAT_VERSION))


# The table layouts this verifier knows (docs/FORMAT.md section 13): schema 1 keeps the chain head
# in meta; schema 2 keeps none (the head is the last record).
SCHEMAS = {1, 2}


def schema_version(meta):
    declared = meta.get(meta_key("schema_version"))
    if declared is None:
        return None
    if len(declared) != 4:
        raise UsageError("meta schema_version is %d bytes, not 4" % len(declared))
    version = struct.unpack(">I", declared)[0]
    if version not in SCHEMAS:
        raise UsageError("the store has schema version %d; this verifier knows %s and refuses to guess"
                         % (version, ", ".join(str(v) for v in sorted(SCHEMAS))))
    return version


def check_meta(meta, report):
    head = meta.get(meta_key("chain_head"))
    if schema_version(meta) == 2:
        # Schema 2 derives the head from the last record: meta must not claim one.
        if head is not None:
            report.add("headMismatch", None, "meta", "meta holds a chain_head, which schema 2 does not keep")
        return
    if head is None:
        # An empty log has no head; a non-empty one must have one.
        if report.head_seq != 0:
            report.add("headMismatch", report.head_seq, "meta", "meta has no chain head")
        return
    if len(head) != 8 + HASH_SIZE:
        report.add("headMismatch", None, "meta", "the chain head in meta is malformed (%d bytes)" % len(head))
        return
    seq, digest = struct.unpack(">Q", head[:8])[0], head[8:]
    if seq != report.head_seq or digest != report.head_hash:
        report.add("headMismatch", max(seq, report.head_seq), "meta",
                   "meta says head seq %d hash %s; the log ends at seq %d hash %s"
                   % (seq, digest.hex(), report.head_seq, report.head_hash.hex()))


def describe(problem):
    where = "seq %d" % problem["seq"] if problem["seq"] is not None else problem["table"]
    return "%s at %s (%s): %s" % (problem["kind"], where, problem["table"], problem["detail"])


def main(argv):
    parser = argparse.ArgumentParser(description="Verify a Larder store's audit hash chain with mdb_dump.")
    parser.add_argument("store_dir", help="the store directory (holds data.mdb and lock.mdb)")
    parser.add_argument("--json", action="store_true", help="print one JSON summary instead of text")
    parser.add_argument("--mdb-dump", default="mdb_dump", help="the mdb_dump program (default: from PATH)")
    args = parser.parse_args(argv)  # exits 2 on a usage error

    try:
        if not os.path.isfile(os.path.join(args.store_dir, "data.mdb")):
            raise UsageError("%s has no data.mdb: not a store directory" % args.store_dir)
        seen = set()
        report, meta = verify(dump_tables(args.mdb_dump, args.store_dir, {"audit", "meta"}, seen))
        missing = {"audit", "meta"} - seen
        if missing:
            raise UsageError("%s has no %s table: not a Larder store"
                             % (args.store_dir, " or ".join(sorted(missing))))
        # meta arrives last (mdb_dump -a goes in table-name order), so the format check comes
        # after the walk; problems found under a wrong format assumption are discarded with it.
        check_format_version(meta)
        schema_version(meta)
    except UsageError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    check_meta(meta, report)

    if args.json:
        print(json.dumps({
            "intact": report.intact,
            "records": report.records,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash.hex(),
            "first_broken_seq": report.first_broken_seq,
            "problems": report.problems,
        }, indent=2))
    else:
        for problem in report.problems:
            print(describe(problem))
        if report.intact:
            print("OK %d records, head %d %s" % (report.records, report.head_seq, report.head_hash.hex()))
        else:
            broken = report.first_broken_seq
            first = next((p for p in report.problems if p["seq"] == broken), report.problems[0])
            where = "seq %d" % broken if broken is not None else first["table"]
            print("BROKEN at %s: %s: %s" % (where, first["kind"], first["detail"]))
    return 0 if report.intact else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
