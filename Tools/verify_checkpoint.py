#!/usr/bin/env python3
"""Verify Larder's transparency artefacts without Larder: signed checkpoints, Merkle roots,
inclusion proofs and consistency proofs.

Python 3 standard library only. The Ed25519 verification (and, for test vectors, signing) is
written out below from the mathematics of RFC 8032, and the Merkle tree from the definitions
of RFC 6962 section 2.1, so nothing here shares code with Larder's Swift implementation. The
formats are in docs/FORMAT.md section 14.

Usage:
  verify_checkpoint.py checkpoint NOTE_FILE --vkey VKEY [--records EXPORT.ndjson]
      Checks the signed checkpoint note against the verifier key (and that its origin is the
      key's name). With --records (the NDJSON of GET /v1/audit/export from seq 1, or
      `larder audit --format ndjson`), also recomputes the Merkle root of the first
      <tree size> records and compares it with the checkpoint's.
  verify_checkpoint.py root EXPORT.ndjson [--size N]
      Prints the Merkle root of the records (all, or the first N), checking every leaf_hash.
  verify_checkpoint.py inclusion PROOF.json (--checkpoint NOTE_FILE --vkey VKEY | --root HEX)
                                 [--record RECORD.json]
      PROOF.json is the answer of GET /v1/audit/proof/inclusion:
      {"seq","leaf_index","tree_size","leaf_hash","root_hash","proof":[hex...]}.
      With --record (one record as GET /v1/audit/{seq} returns it), also checks that the
      proof's leaf hash is that record's.
  verify_checkpoint.py consistency PROOF.json (--old NOTE_FILE --new NOTE_FILE --vkey VKEY |
                                   --old-root HEX --new-root HEX)
      PROOF.json is the answer of GET /v1/audit/proof/consistency:
      {"from_size","to_size","proof":[hex...]}.
  verify_checkpoint.py selftest
      RFC 8032 test vectors and Merkle tree self-checks.
  verify_checkpoint.py make-vectors
      Prints the JSON test vectors of Tests/Vectors/transparency.json (deterministic).

Output: `OK ...` on success; `FAILED: <reason>` otherwise.
Exit status: 0 verified, 1 verification failed, 2 usage error or malformed input.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys

# ---------------------------------------------------------------------------------------------
# Ed25519 (RFC 8032 section 5.1), in extended twisted Edwards coordinates (X, Y, Z, T),
# x = X/Z, y = Y/Z, x*y = T/Z.
# ---------------------------------------------------------------------------------------------

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493   # the group order, "L" in RFC 8032
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _inv(x):
    return pow(x, P - 2, P)


def _recover_x(y, sign):
    """The x with x^2 = (y^2 - 1) / (d y^2 + 1) and the given low bit; None if there is none."""
    if y >= P:
        return None
    x2 = (y * y - 1) * _inv(D * y * y + 1) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if x & 1 != sign:
        x = P - x
    return x


_BY = 4 * _inv(5) % P
_BX = _recover_x(_BY, 0)
BASE = (_BX, _BY, 1, _BX * _BY % P)
IDENTITY = (0, 1, 1, 0)


def _add(p1, p2):
    # RFC 8032 section 5.1.4, add-2008-hwcd-3 (complete for a = -1).
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = b - a, dd - c, dd + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(scalar, point):
    result = IDENTITY
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _equal(p1, p2):
    x1, y1, z1, _ = p1
    x2, y2, z2, _ = p2
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


def _compress(point):
    x, y, z, _ = point
    zinv = _inv(z)
    x, y = x * zinv % P, y * zinv % P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _decompress(data):
    """The point of a 32-byte encoding, or None; non-canonical encodings (y >= p, or x = 0
    with the sign bit set) are refused."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _sha512_int(*parts):
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


def _expand_seed(seed):
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, digest[32:]


def ed25519_public_key(seed):
    a, _ = _expand_seed(seed)
    return _compress(_multiply(a, BASE))


def ed25519_sign(seed, message):
    """Deterministic RFC 8032 signature; only used to make test vectors."""
    a, prefix = _expand_seed(seed)
    public = _compress(_multiply(a, BASE))
    r = _sha512_int(prefix, message) % L
    encoded_r = _compress(_multiply(r, BASE))
    k = _sha512_int(encoded_r, public, message) % L
    return encoded_r + int.to_bytes((r + k * a) % L, 32, "little")


def ed25519_verify(public, message, signature):
    """RFC 8032 section 5.1.7 verification: [S]B = R + [k]A, with S < L and canonical points."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a_point = _decompress(public)
    r_point = _decompress(signature[:32])
    if a_point is None or r_point is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = _sha512_int(signature[:32], public, message) % L
    return _equal(_multiply(s, BASE), _add(r_point, _multiply(k, a_point)))


# ---------------------------------------------------------------------------------------------
# Merkle tree (RFC 6962 section 2.1), straight from the definitions
# ---------------------------------------------------------------------------------------------

def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n):
    """The largest power of two smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    """MTH(D[n]) over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_path(index, leaves):
    """PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return inclusion_path(index, leaves[:k]) + [mth(leaves[k:])]
    return inclusion_path(index - k, leaves[k:]) + [mth(leaves[:k])]


def consistency_proof(m, leaves):
    """PROOF(m, D[n]) for 0 < m < n; empty for m = 0 or m = n."""
    if m == 0 or m == len(leaves):
        return []

    def subproof(m, leaves, whole):
        n = len(leaves)
        if m == n:
            return [] if whole else [mth(leaves)]
        k = _split(n)
        if m <= k:
            return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
        return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]

    return subproof(m, leaves, True)


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 section 2.1.4.2, with the edge cases of C2SP tlog-witness: equal sizes need an
    empty proof and equal roots, an old size of 0 an empty proof."""
    if first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


# ---------------------------------------------------------------------------------------------
# C2SP signed notes, verifier keys and checkpoints
# ---------------------------------------------------------------------------------------------

class Malformed(Exception):
    """Input that is not what the format says: exit status 2."""


class Failed(Exception):
    """Well-formed input that does not verify: exit status 1."""


NOTE_BYTES_MAX = 256 * 1024
SIGNATURES_MAX = 100
EM_DASH_SPACE = "\u2014 ".encode()


def strict_b64(text):
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("not base64: %r" % text[:60])
    if base64.b64encode(data).decode() != text:
        raise Malformed("not canonical base64: %r" % text[:60])
    return data


def check_key_name(name):
    if not name or len(name.encode()) > 256:
        raise Malformed("a key name is 1 to 256 bytes")
    for ch in name:
        if ch == "+" or ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            raise Malformed("key name %r holds %r" % (name, ch))


def key_id(name, public):
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4], "big")


def parse_vkey(text):
    """NAME+<8 hex>+<base64(0x01 || public key)> -> (name, key id, public key)."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise Malformed("a verifier key is NAME+ID+KEY")
    name, hex_id, encoded = parts
    check_key_name(name)
    if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
        raise Malformed("the key ID is not 8 lowercase hex digits")
    raw = strict_b64(encoded)
    if len(raw) != 33 or raw[0] != 1:
        raise Malformed("the key is not 0x01 and 32 bytes of Ed25519")
    public = raw[1:]
    if key_id(name, public) != int(hex_id, 16):
        raise Malformed("the key ID does not match the name and key")
    return name, int(hex_id, 16), public


def vkey_text(name, public):
    return "%s+%08x+%s" % (name, key_id(name, public), base64.b64encode(b"\x01" + public).decode())


def private_key_text(name, seed):
    public = ed25519_public_key(seed)
    return "PRIVATE+KEY+%s+%08x+%s" % (name, key_id(name, public), base64.b64encode(b"\x01" + seed).decode())


def parse_note(data):
    """A signed note -> (text bytes, [(name, key id, signature bytes)])."""
    if len(data) > NOTE_BYTES_MAX:
        raise Malformed("the note is larger than %d bytes" % NOTE_BYTES_MAX)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the note is not UTF-8")
    if any(b < 0x20 and b != 0x0A for b in data):
        raise Malformed("the note holds a control character")
    if not data.endswith(b"\n"):
        raise Malformed("the note does not end in a newline")
    split = data.rfind(b"\n\n")
    if split < 0:
        raise Malformed("no blank line separates the text from the signatures")
    text, block = data[:split + 1], data[split + 2:]
    lines = block.split(b"\n")[:-1]
    if not lines or len(lines) > SIGNATURES_MAX:
        raise Malformed("a note has 1 to %d signatures" % SIGNATURES_MAX)
    signatures = []
    for line in lines:
        if not line.startswith(EM_DASH_SPACE):
            raise Malformed("a signature line does not start with an em dash and a space")
        fields = line[len(EM_DASH_SPACE):].split(b" ")
        if len(fields) != 2:
            raise Malformed("a signature line is not '— name signature'")
        name = fields[0].decode()
        check_key_name(name)
        raw = strict_b64(fields[1].decode())
        if len(raw) <= 4:
            raise Malformed("a signature is too short")
        signatures.append((name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, signatures


def verify_note(data, vkey):
    """The note's text if a signature by vkey verifies and none by vkey fails (C2SP signed-note:
    unknown keys are ignored, a failing known key rejects the note)."""
    name, kid, public = vkey
    text, signatures = parse_note(data)
    verified = False
    for signer, signer_id, signature in signatures:
        if signer.encode() != name.encode() or signer_id != kid:
            continue
        if not ed25519_verify(public, text, signature):
            raise Failed("the signature by %s does not verify" % name)
        verified = True
    if not verified:
        raise Failed("no signature by %s+%08x" % (name, kid))
    return text


def parse_checkpoint(text):
    """Checkpoint body -> (origin, size, root bytes, extension lines)."""
    if not text.endswith(b"\n"):
        raise Malformed("the checkpoint does not end in a newline")
    lines = text[:-1].decode().split("\n")
    if len(lines) < 3 or any(line == "" for line in lines):
        raise Malformed("a checkpoint has at least three non-empty lines")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")) or int(size) >= 2 ** 64:
        raise Malformed("the tree size %r is not a decimal without leading zeros" % size)
    raw = strict_b64(root)
    if len(raw) != 32:
        raise Malformed("the root hash is not 32 bytes")
    return origin, int(size), raw, lines[3:]


def open_checkpoint(data, vkey):
    """(origin, size, root) of a signed checkpoint verified with vkey, origin = key name."""
    origin, size, root, _ = parse_checkpoint(verify_note(data, vkey))
    if origin != vkey[0]:
        raise Failed("the checkpoint's origin %r is not the key's name %r" % (origin, vkey[0]))
    return origin, size, root


def sign_note(text, name, seed):
    public = ed25519_public_key(seed)
    signature = key_id(name, public).to_bytes(4, "big") + ed25519_sign(seed, text)
    return text + b"\n" + EM_DASH_SPACE + name.encode() + b" " + base64.b64encode(signature) + b"\n"


def checkpoint_body(origin, size, root):
    return ("%s\n%d\n%s\n" % (origin, size, base64.b64encode(root).decode())).encode()


# ---------------------------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------------------------

def unhex32(text, what):
    try:
        raw = bytes.fromhex(text)
    except (ValueError, TypeError):
        raise Malformed("%s is not hexadecimal" % what)
    if len(raw) != 32:
        raise Malformed("%s is not 32 bytes" % what)
    return raw


def read_export_leaves(path, size=None):
    """Leaf hashes of an NDJSON export starting at seq 1, each checked against its record bytes."""
    leaves = []
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            seq = record.get("seq")
            if seq != len(leaves) + 1:
                raise Malformed("line %d: seq %r where %d was expected (exports must start at seq 1, without gaps)"
                                % (number, seq, len(leaves) + 1))
            leaf = leaf_hash(bytes.fromhex(record["record_bytes"]))
            if leaf.hex() != record.get("leaf_hash"):
                raise Failed("seq %d: leaf_hash is not SHA-256(0x00 || record_bytes)" % seq)
            leaves.append(leaf)
            if size is not None and len(leaves) == size:
                break
    if size is not None and len(leaves) < size:
        raise Malformed("the export has %d records, fewer than %d" % (len(leaves), size))
    return leaves


def read_bytes(path):
    with open(path, "rb") as stream:
        return stream.read(NOTE_BYTES_MAX + 1)


def read_json(path):
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def proof_hashes(values):
    if not isinstance(values, list) or len(values) > 65:
        raise Malformed("proof is not a list of at most 65 hashes")
    return [unhex32(value, "a proof hash") for value in values]


def size_field(document, name):
    value = document.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 64:
        raise Malformed("%s is not a tree size" % name)
    return value


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def command_checkpoint(args):
    vkey = parse_vkey(args.vkey)
    origin, size, root = open_checkpoint(read_bytes(args.note), vkey)
    if args.records:
        computed = mth(read_export_leaves(args.records, size))
        if computed != root:
            raise Failed("the root of the first %d records is %s, the checkpoint says %s"
                         % (size, computed.hex(), root.hex()))
        return "OK checkpoint %s size %d root %s matches the records" % (origin, size, root.hex())
    return "OK checkpoint %s size %d root %s" % (origin, size, root.hex())


def command_root(args):
    leaves = read_export_leaves(args.export, args.size)
    root = mth(leaves)
    return "OK size %d root %s %s" % (len(leaves), root.hex(), base64.b64encode(root).decode())


def command_inclusion(args):
    document = read_json(args.proof)
    index, size = size_field(document, "leaf_index"), size_field(document, "tree_size")
    if "seq" in document and document["seq"] != index + 1:
        raise Malformed("seq %r is not leaf_index + 1" % document["seq"])
    leaf = unhex32(document.get("leaf_hash"), "leaf_hash")
    proof = proof_hashes(document.get("proof"))
    if args.record:
        record = read_json(args.record)
        if record.get("seq") != index + 1:
            raise Failed("the record is seq %r, the proof is for seq %d" % (record.get("seq"), index + 1))
        if leaf_hash(bytes.fromhex(record["record_bytes"])) != leaf:
            raise Failed("the proof's leaf_hash is not the hash of the record's bytes")
    if args.checkpoint:
        _, checkpoint_size, root = open_checkpoint(read_bytes(args.checkpoint), parse_vkey(args.vkey))
        if checkpoint_size != size:
            raise Failed("the proof is for tree size %d, the checkpoint is for %d" % (size, checkpoint_size))
    else:
        root = unhex32(args.root, "--root")
    if "root_hash" in document and unhex32(document["root_hash"], "root_hash") != root:
        raise Failed("the proof's root_hash is not the trusted root")
    if not verify_inclusion(leaf, index, size, proof, root):
        raise Failed("the inclusion proof of leaf %d in tree size %d does not verify" % (index, size))
    return "OK seq %d is in the tree of size %d with root %s" % (index + 1, size, root.hex())


def command_consistency(args):
    document = read_json(args.proof)
    first, second = size_field(document, "from_size"), size_field(document, "to_size")
    proof = proof_hashes(document.get("proof"))
    if args.old:
        vkey = parse_vkey(args.vkey)
        _, old_size, old_root = open_checkpoint(read_bytes(args.old), vkey)
        _, new_size, new_root = open_checkpoint(read_bytes(args.new), vkey)
        if (old_size, new_size) != (first, second):
            raise Failed("the proof is from %d to %d, the checkpoints are %d and %d" % (first, second, old_size, new_size))
    else:
        old_root, new_root = unhex32(args.old_root, "--old-root"), unhex32(args.new_root, "--new-root")
    if not verify_consistency(first, second, old_root, new_root, proof):
        raise Failed("the tree of size %d does not extend the tree of size %d" % (second, first))
    return "OK tree size %d extends tree size %d" % (second, first)


# RFC 8032 section 7.1, tests 1 to 3: secret key, public key, message, signature.
RFC8032_VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
     "d25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
     "4a7c15e9716ed28dc027beceea1ec40a"),
]


def command_selftest(_args):
    for secret, public, message, signature in RFC8032_VECTORS:
        seed, pub, msg, sig = (bytes.fromhex(x) for x in (secret, public, message, signature))
        assert ed25519_public_key(seed) == pub, "RFC 8032 public key"
        assert ed25519_sign(seed, msg) == sig, "RFC 8032 signature"
        assert ed25519_verify(pub, msg, sig), "RFC 8032 verification"
        assert not ed25519_verify(pub, msg + b"x", sig), "RFC 8032 wrong message"
        bad_s = sig[:32] + int.to_bytes(int.from_bytes(sig[32:], "little") + L, 32, "little")
        assert not ed25519_verify(pub, msg, bad_s), "S >= L must be refused"
    leaves = [leaf_hash(bytes([i])) for i in range(40)]
    for n in range(1, 41):
        root = mth(leaves[:n])
        for m in range(n):
            assert verify_inclusion(leaves[m], m, n, inclusion_path(m, leaves[:n]), root)
        for m in range(0, n + 1):
            assert verify_consistency(m, n, mth(leaves[:m]), root, consistency_proof(m, leaves[:n]))
    return "OK selftest: RFC 8032 vectors, Merkle proofs for sizes 1-40"


def synthetic_record(index):
    # Arbitrary bytes of varying lengths: the tree does not care what a leaf encodes.
    return (b"larder vector record %d;" % index) * (1 + index % 3)


def command_make_vectors(_args):
    name = "larder.test/vectors"
    seed = hashlib.sha256(b"larder transparency test vector seed").digest()
    public = ed25519_public_key(seed)
    records = [synthetic_record(i) for i in range(300)]
    leaves = [leaf_hash(r) for r in records]
    roots = [{"size": n, "root": mth(leaves[:n]).hex()} for n in range(0, 301)]
    inclusion = []
    for size in (1, 2, 3, 5, 7, 8, 9, 255, 256, 257, 300):
        for index in sorted({0, 1, size // 2, size - 2, size - 1} & set(range(size))):
            inclusion.append({"leaf_index": index, "tree_size": size,
                              "proof": [h.hex() for h in inclusion_path(index, leaves[:size])]})
    consistency = []
    for first, second in ((0, 5), (1, 1), (1, 2), (1, 8), (3, 7), (4, 7), (6, 7), (7, 8), (8, 9), (127, 300),
                          (200, 256), (255, 256), (256, 257), (256, 300), (257, 300), (299, 300), (300, 300)):
        consistency.append({"from_size": first, "to_size": second,
                            "proof": [h.hex() for h in consistency_proof(first, leaves[:second])]})
    checkpoints = []
    for size in (0, 1, 7, 256, 300):
        body = checkpoint_body(name, size, mth(leaves[:size]))
        checkpoints.append({"size": size, "note": sign_note(body, name, seed).decode()})
    other_seed = hashlib.sha256(b"larder transparency other key").digest()
    body = checkpoint_body(name, 7, mth(leaves[:7]))
    # One note with a second signature by an unknown key (same name, other key ID): verifiers
    # must ignore it.
    two = sign_note(body, name, seed)
    other_public = ed25519_public_key(other_seed)
    extra = key_id(name, other_public).to_bytes(4, "big") + ed25519_sign(other_seed, body)
    two += EM_DASH_SPACE + name.encode() + b" " + base64.b64encode(extra) + b"\n"
    vectors = {
        "generator": "python3 Tools/verify_checkpoint.py make-vectors",
        "key": {"name": name, "seed": seed.hex(), "public_key": public.hex(),
                "key_id": "%08x" % key_id(name, public),
                "verifier_key": vkey_text(name, public), "private_key": private_key_text(name, seed)},
        "other_verifier_key": vkey_text(name, other_public),
        "records": [r.hex() for r in records],
        "roots": roots,
        "inclusion": inclusion,
        "consistency": consistency,
        "checkpoints": checkpoints,
        "note_with_unknown_signature": two.decode(),
    }
    return json.dumps(vectors, indent=1, sort_keys=True)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("checkpoint")
    p.add_argument("note")
    p.add_argument("--vkey", required=True)
    p.add_argument("--records")
    p.set_defaults(run=command_checkpoint)
    p = commands.add_parser("root")
    p.add_argument("export")
    p.add_argument("--size", type=int)
    p.set_defaults(run=command_root)
    p = commands.add_parser("inclusion")
    p.add_argument("proof")
    p.add_argument("--checkpoint")
    p.add_argument("--vkey")
    p.add_argument("--root")
    p.add_argument("--record")
    p.set_defaults(run=command_inclusion)
    p = commands.add_parser("consistency")
    p.add_argument("proof")
    p.add_argument("--old")
    p.add_argument("--new")
    p.add_argument("--vkey")
    p.add_argument("--old-root")
    p.add_argument("--new-root")
    p.set_defaults(run=command_consistency)
    commands.add_parser("selftest").set_defaults(run=command_selftest)
    commands.add_parser("make-vectors").set_defaults(run=command_make_vectors)
    args = parser.parse_args(argv)
    if args.command == "inclusion" and not ((args.checkpoint and args.vkey) or args.root):
        parser.error("inclusion needs --checkpoint and --vkey, or --root")
    if args.command == "consistency" and not ((args.old and args.new and args.vkey) or (args.old_root and args.new_root)):
        parser.error("consistency needs --old, --new and --vkey, or --old-root and --new-root")
    try:
        print(args.run(args))
        return 0
    except Failed as failure:
        print("FAILED: %s" % failure)
        return 1
    except (Malformed, OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        print("ERROR: %s" % error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
