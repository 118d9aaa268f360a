import LarderStorage

extension Store {
    /// Migrates a schema-1 store to schema 2 in one audited write (docs/FORMAT.md section 17):
    /// the secondary indexes are rebuilt into the one `index` table from the audit log and the
    /// state rows (not copied from the old tables, which are dropped), `meta.chain_head` goes,
    /// `meta.time_ordered_from` says where record times stop going back, and a `SCHEMA_MIGRATED`
    /// record (from 1 to 2) is appended. Audit records are not touched: their bytes and hashes
    /// stay as they are. Another process that migrated first leaves nothing to do.
    func migrateFromSchema1() throws(LarderError) {
        let now = options.clock.now().unixMicros
        let context = WriteContext(actor: .larder, requestID: "larder.migrate.\(now)")
        let outcome = try internalWrite(context) { txn -> Int? in
            let raw = txn.txn
            guard let bytes = try raw.get(tables.meta, MetaKey.schemaVersion) else { return nil }
            var reader = ByteReader(bytes)
            guard try reader.readUInt32() == 1 else { return nil }

            // Are the records' times in order already? Then the whole log is found by seq.
            var ordered = true
            var previous = Int64.min
            var records = 0
            var head: UInt64 = 0
            try raw.forEachBytes(tables.audit) { key, value throws(LarderError) -> Bool in
                let time = try AuditLog.time(value: value)
                if time < previous { ordered = false }
                previous = max(previous, time)
                records += 1
                head = try AuditLog.seq(key: key)
                return true
            }

            // Every record's index entries, from the record itself.
            try raw.forEachBytes(tables.audit) { key, value throws(LarderError) -> Bool in
                let seq = try AuditLog.seq(key: key)
                guard value.count > 64, let fields = try? RecordFields(UnsafeRawBufferPointer(rebasing: value[..<(value.count - 64)])) else {
                    throw LarderError(.persistenceError,
                                      "Audit seq \(seq) cannot be decoded, so the store cannot be migrated; nothing was changed.",
                                      failureClass: .dataInconsistency, failurePoint: .open)
                }
                try raw.put(tables.auditByRequest, KeyPair(InPlace.text(fields.requestID), seq), Empty())
                var refs: [CorrelationRef] = []
                fields.forEachRef { kind, id in refs.append(CorrelationRef(InPlace.text(kind), InPlace.text(id))) }
                for ref in refs { try raw.put(tables.auditByRef, KeyPair(KeyPair(ref.kind, ref.id), seq), Empty()) }
                if !ordered { try raw.put(tables.auditByTime, KeyPair(fields.timeMicros, seq), Empty()) }
                return true
            }

            // The incident and compensation indexes, from their rows.
            try raw.forEach(tables.incidents) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
                for key in IncidentWriter.indexKeys(try Incident.decode(entry.value)) { try raw.put(tables.incidentsIndex, key, Empty()) }
                return true
            }
            try raw.forEach(tables.compensationProposals) { (entry: Entry<String, [UInt8]>) throws(LarderError) -> Bool in
                for key in CompensationWriter.indexKeys(try CompensationProposal.decode(entry.value)) {
                    try raw.put(tables.compensationIndex, key, Empty())
                }
                return true
            }

            // Schema 1's own tables and its chain head go.
            for name in StoreTables.Legacy.names { try raw.dropTable(named: name) }
            try raw.delete(tables.meta, MetaKey.chainHead)
            var version = ByteWriter()
            version.write(UInt32(2))
            try raw.put(tables.meta, MetaKey.schemaVersion, version.bytes)
            // The migration's own record is the first of the ordered part when the old part is not.
            let orderedFrom = ordered ? UInt64(1) : head + 1
            var from = ByteWriter()
            from.write(orderedFrom)
            try raw.put(tables.meta, MetaKey.timeOrderedFrom, from.bytes)

            var payload = JSONWriter()
            payload.object { o in
                o.field("from_schema", 1)
                o.field("to_schema", 2)
                o.field("audit_format", AuditRecord.formatVersion)
                o.field("records", records)
                o.field("time_ordered_from", orderedFrom)
            }
            try txn.appendAudit(AuditDraft(event: .schemaMigrated, payload: payload.text))
            return records
        }
        guard let records = outcome.result else { return }
        environment.forgetTables(StoreTables.Legacy.names)
        log.schemaMigrated(from: 1, to: Self.schemaVersion, records: records, context: context, seq: outcome.auditSeq)
    }
}
