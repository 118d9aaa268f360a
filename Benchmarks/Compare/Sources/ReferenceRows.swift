import Crypto
import Larder

/// The reference for the raw contestants' rows: the transfer, its audit record with the SHA-256
/// chain, and the decision, built with Larder's own encoders (`AuditRecord.encoded()`,
/// `ByteWriter`, `JSONWriter`) in Larder's byte layouts (docs/FORMAT.md).
///
/// No contestant writes with this any more (it was the first harness's raw contestant, and its
/// Larder helpers cost the raw side more than its puts): `larder-compare --check-rows` compares
/// ``LeanRowBuilder``'s hand-built bytes against it, so both sides still store the same bytes and
/// hash the same inputs.
///
/// What the raw contestants leave out, on purpose, is everything else Larder keeps in the same
/// transaction (balances, per-account history, audit indexes, the chain head in meta, the decision
/// time index): that is the difference the comparison measures.
struct ReferenceRows {
    /// Audit table value: record bytes ‖ leafHash ‖ chainHash.
    let auditValue: [UInt8]
    let chainHash: [UInt8]
    let transferValue: [UInt8]
    let decisionValue: [UInt8]

    static let operationName = "ledger.transfer"

    /// Builds the rows of `spec` as audit record `seq`, chained after `previousChain`; with
    /// `importBatchStart`, as a bulk import writes them (the batch's request, no decision).
    init(_ spec: TransferSpec, seq: UInt64, timeMicros: Int64, previousChain: [UInt8], importBatchStart: Int? = nil) {
        // The decision's fingerprint: SHA-256 over the canonical request (sorted keys).
        var request = JSONWriter()
        request.object { o in
            o.object("actor") { a in
                a.field("id", TransferSpec.actor.id)
                a.field("role", TransferSpec.actor.role.rawValue)
            }
            o.field("operation", Self.operationName)
            o.object("request") { r in
                r.field("amount", spec.amount)
                r.field("code", 0)
                r.field("creditAccount", spec.creditAccount)
                r.field("debitAccount", spec.debitAccount)
                r.field("id", spec.id)
                r.field("kind", "single")
                r.array("refs") { _ in }
            }
        }
        let fingerprint = Array(SHA256.hash(data: Array(request.text.utf8)))

        var payload = JSONWriter()
        payload.object { o in
            o.field("transfer_id", spec.id)
            o.field("kind", "single")
            o.field("debit_account", spec.debitAccount)
            o.field("credit_account", spec.creditAccount)
            o.field("amount", spec.amount)
            o.field("ledger", TransferSpec.ledger)
            o.field("code", 0)
            o.field("target", nil as String?)
        }
        let record = AuditRecord(
            seq: seq, timeMicros: timeMicros, event: .ledgerTransferPosted, actor: TransferSpec.actor,
            requestID: importBatchStart.map { "import-\($0)" } ?? spec.requestID, traceID: nil,
            decisionID: importBatchStart == nil ? spec.decisionID : nil,
            refs: [.transfer(spec.id), .account(spec.debitAccount), .account(spec.creditAccount)],
            failureCategory: nil, responseType: nil, reasonCode: nil, payload: payload.text)
        let recordBytes = record.encoded()
        var leafHasher = SHA256()
        leafHasher.update(data: [0x00])
        leafHasher.update(data: recordBytes)
        let leaf = Array(leafHasher.finalize())
        var chainHasher = SHA256()
        chainHasher.update(data: [0x01])
        chainHasher.update(data: previousChain)
        chainHasher.update(data: leaf)
        let chain = Array(chainHasher.finalize())
        auditValue = recordBytes + leaf + chain
        chainHash = chain

        var transfer = ByteWriter(capacity: 128)
        transfer.write(UInt8(1))
        transfer.write(string: "single")
        transfer.write(string: spec.debitAccount)
        transfer.write(string: spec.creditAccount)
        transfer.write(spec.amount)
        transfer.write(string: TransferSpec.ledger)
        transfer.write(UInt16(0))
        transfer.write(UInt32(0))
        transfer.write(optional: nil)
        transfer.write(timeMicros)
        transfer.write(seq)
        transferValue = transfer.bytes

        // The stored result a replay would return: the transfer as JSON.
        var result = JSONWriter()
        result.object { o in
            o.object("created") { c in
                c.object("_0") { t in
                    t.field("amount", spec.amount)
                    t.field("auditSeq", seq)
                    t.field("code", 0)
                    t.field("creditAccount", spec.creditAccount)
                    t.field("debitAccount", spec.debitAccount)
                    t.field("id", spec.id)
                    t.field("kind", "single")
                    t.field("ledger", TransferSpec.ledger)
                    t.array("refs") { _ in }
                    t.field("timeMicros", timeMicros)
                }
            }
        }
        var decision = ByteWriter(capacity: 64 + result.text.utf8.count)
        decision.write(UInt8(1))
        decision.write(raw: fingerprint)
        decision.write(timeMicros)
        decision.write(seq)
        decision.write(string: Self.operationName)
        decision.write(blob: Array(result.text.utf8))
        decisionValue = importBatchStart == nil ? decision.bytes : []
    }
}
