import LarderStorage
import Foundation

extension Verifier {
    /// Checks every compensation proposal against its index entries, its audit records and its
    /// ledger effects: the `COMPENSATION_PROPOSED` record it names says what the proposal holds;
    /// a decided one names its `COMPENSATION_APPROVED` or `COMPENSATION_REJECTED` record; a
    /// reserved credit is a pending transfer of the credit's amount into the customer's account,
    /// still open while the proposal waits, posted by `<id>.credit` once approved and voided by
    /// `<id>.release` once rejected; an approved one holds its responses on the incident and its
    /// refund request.
    mutating func verifyCompensation() throws(LarderError) {
        let table = StoreTables.compensationProposalsName
        var count = 0
        let total = try txn.statistics(tables.compensationProposals).entries
        try txn.forEach(tables.compensationProposals) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
            count += 1
            report.otherRecordsChecked += 1
            guard let proposal = try? CompensationProposal.decode(entry.value), proposal.id == entry.key else {
                report.add(.incidentMismatch, seq: nil, table: table, "proposal \(entry.key) cannot be decoded")
                return true
            }
            for key in CompensationWriter.indexKeys(proposal) where try !txn.contains(tables.compensationIndex, key) {
                report.add(.missingIndexEntry, seq: nil, table: StoreTables.compensationIndexName,
                           "proposal \(proposal.id) has no \(key.first) entry")
            }
            try checkProposalRecords(proposal)
            try checkProposalEffects(proposal)
            tick("compensation proposals", count, total)
            return true
        }
        let indexCount = try txn.statistics(tables.compensationIndex).entries
        if indexCount != count * 3 {
            report.add(.danglingIndexEntry, seq: nil, table: StoreTables.compensationIndexName,
                       "\(indexCount) entries for \(count) proposals (expected \(count * 3))")
        }
    }

    /// The fields of a compensation record's payload that verify compares.
    private struct CompensationPayload: Decodable {
        let proposal_id: String
        let incident_id: String
        let channel: String
        let total_cents: UInt64?
        let state: String?
        let hold_transfer: String?
    }

    private mutating func checkProposalRecords(_ proposal: CompensationProposal) throws(LarderError) {
        let table = StoreTables.compensationProposalsName
        let what = "proposal \(proposal.id)"
        if let payload = try compensationRecord(seq: proposal.proposedSeq, event: .compensationProposed, proposal: proposal, what: what) {
            let proposedState: ProposalState = proposal.decision?.autoRule != nil ? .approved : .pending
            if payload.total_cents != proposal.offer.totalCents || payload.state != proposedState.rawValue
                || payload.hold_transfer != proposal.holdTransferID {
                report.add(.incidentMismatch, seq: proposal.proposedSeq, table: table,
                           "\(what) differs from its COMPENSATION_PROPOSED record (amount, state or hold)")
            }
        }
        switch (proposal.state, proposal.decision) {
        case (.pending, nil):
            break
        case (.approved, let decision?) where decision.verdict == .approved:
            _ = try compensationRecord(seq: decision.auditSeq, event: .compensationApproved, proposal: proposal, what: "the approval of \(what)")
        case (.rejected, let decision?) where decision.verdict == .rejected:
            _ = try compensationRecord(seq: decision.auditSeq, event: .compensationRejected, proposal: proposal, what: "the rejection of \(what)")
        default:
            report.add(.incidentMismatch, seq: proposal.decision?.auditSeq, table: table,
                       "\(what) is \(proposal.state.rawValue) with \(proposal.decision.map { "a decision \($0.verdict.rawValue)" } ?? "no decision")")
        }
    }

    /// The record at `seq`, when it is an `event` record about the proposal (by ref and payload);
    /// otherwise a problem is reported and nil returned.
    private mutating func compensationRecord(seq: UInt64, event: AuditEvent, proposal: CompensationProposal,
                                             what: String) throws(LarderError) -> CompensationPayload? {
        let table = StoreTables.compensationProposalsName
        guard let value = try txn.get(tables.audit, seq), let record = try? AuditEntry.decode(value).record else {
            report.add(.incidentMismatch, seq: seq, table: table, "\(what) names audit seq \(seq), which does not exist")
            return nil
        }
        guard record.event == event, record.refs.contains(.proposal(proposal.id)),
              let payload = try? JSONDecoder().decode(CompensationPayload.self, from: Data(record.payload.utf8)),
              payload.proposal_id == proposal.id, payload.incident_id == proposal.incidentID,
              payload.channel == proposal.offer.channel.rawValue else {
            report.add(.incidentMismatch, seq: seq, table: table,
                       "\(what) names audit seq \(seq), a \(record.event.rawValue) record that is not its \(event.rawValue)")
            return nil
        }
        return payload
    }

    private mutating func checkProposalEffects(_ proposal: CompensationProposal) throws(LarderError) {
        let table = StoreTables.compensationProposalsName
        let what = "proposal \(proposal.id)"
        func problem(_ detail: String) { report.add(.incidentMismatch, seq: proposal.decision?.auditSeq ?? proposal.proposedSeq, table: table, "\(what): \(detail)") }
        let ledger = LedgerReader(txn: txn, tables: tables)
        let credit = proposal.offer.credit
        if let hold = proposal.holdTransferID {
            let transfer = try ledger.transfer(id: hold)
            if transfer?.kind != .pending || transfer?.amount != proposal.creditCents || transfer?.creditAccount != credit?.customerAccount {
                problem("its hold \(hold) is not a pending transfer of \(proposal.creditCents ?? 0) into \(credit?.customerAccount ?? "(none)")")
            }
            let resolution = try ledger.resolution(of: hold)
            let expected: TransferResolution? = switch proposal.state {
            case .pending: nil
            case .approved: TransferResolution(kind: .postPending, byTransfer: "\(proposal.id).credit")
            case .rejected: TransferResolution(kind: .voidPending, byTransfer: "\(proposal.id).release")
            }
            if resolution != expected {
                problem("its hold \(hold) is \(resolution.map { "resolved by \($0.kind.rawValue) \($0.byTransfer)" } ?? "open"), not \(expected.map { "resolved by \($0.kind.rawValue) \($0.byTransfer)" } ?? "open")")
            }
        } else if credit != nil, proposal.state != .approved || proposal.decision?.autoRule == nil {
            problem("its credit has no hold and was not applied at once")
        }
        guard proposal.state == .approved else {
            if proposal.creditTransferID != nil || proposal.refundID != nil || !proposal.responseIDs.isEmpty {
                problem("it is \(proposal.state.rawValue) but names applied effects")
            }
            return
        }
        if let credit {
            let granted = try proposal.creditTransferID.flatMap { id throws(LarderError) in try ledger.transfer(id: id) }
            let kind: TransferKind = proposal.holdTransferID == nil ? .single : .postPending
            if granted?.kind != kind || granted?.amount != proposal.creditCents || granted?.creditAccount != credit.customerAccount {
                problem("its credit \(proposal.creditTransferID ?? "(none)") is not a \(kind.rawValue) transfer of \(proposal.creditCents ?? 0) into \(credit.customerAccount)")
            }
        }
        if proposal.offer.refund != nil {
            let refund = try proposal.refundID.flatMap { id throws(LarderError) in
                try txn.get(tables.incidentRefunds, id).flatMap { try? RefundRequest.decode($0) }
            }
            if refund?.incidentID != proposal.incidentID || refund?.amountCents != proposal.refundCents {
                problem("its refund request \(proposal.refundID ?? "(none)") is missing or differs")
            }
        }
        let incident = try txn.get(tables.incidents, proposal.incidentID).flatMap { try? Incident.decode($0) }
        let held = Set(incident?.responses.filter { $0.proposalID == proposal.id }.map(\.id) ?? [])
        if held != Set(proposal.responseIDs) || proposal.responseIDs.isEmpty {
            problem("its responses \(proposal.responseIDs) are not the ones incident \(proposal.incidentID) holds for it (\(held.sorted()))")
        }
    }
}
