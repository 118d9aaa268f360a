/// A type that writes its own RFC 8785 bytes, the same bytes ``JCS/encode(_:)`` would write for it
/// through `Encodable`, without building the intermediate tree that generic encoding needs.
///
/// The write path encodes two values per decided write (the request's fingerprint and the stored
/// result); through `Encodable` that was about a third of a transfer's instructions. Conforming
/// types write their members in RFC 8785 order by hand: an object's names sorted by UTF-16 code
/// units (every name here is ASCII, so byte order), an absent optional left out, as Swift's
/// synthesized `Encodable` does. `JCSDirectTests` holds every conformance to the generic
/// encoder's bytes over random values: a new field in one of these types must be written here too.
package protocol JCSDirect {
    /// Appends the canonical bytes of `self`.
    func writeJCS(to out: inout [UInt8])
}

/// The pieces conforming types are written with.
enum JCSWrite {
    /// `"name":` for a name that needs no escaping (ASCII letters and digits).
    @inline(__always)
    static func name(_ literal: StaticString, first: Bool = false, to out: inout [UInt8]) {
        if !first { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        JSONBytes.append(literal, to: &out)
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    @inline(__always)
    static func string(_ value: String, to out: inout [UInt8]) {
        JSONBytes.appendQuoted(value, escapes: .canonical, to: &out)
    }

    @inline(__always)
    static func unsigned<I: UnsignedInteger & FixedWidthInteger>(_ value: I, to out: inout [UInt8]) {
        JSONBytes.appendDecimal(UInt64(value), negative: false, to: &out)
    }

    @inline(__always)
    static func signed(_ value: Int64, to out: inout [UInt8]) {
        JSONBytes.appendDecimal(value.magnitude, negative: value < 0, to: &out)
    }

    static func refs(_ refs: [CorrelationRef], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (index, ref) in refs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            ref.writeJCS(to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }
}

extension CorrelationRef: JCSDirect {
    package func writeJCS(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        JCSWrite.name("id", first: true, to: &out)
        JCSWrite.string(id, to: &out)
        JCSWrite.name("kind", to: &out)
        JCSWrite.string(kind, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

extension ActorIdentity: JCSDirect {
    package func writeJCS(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        JCSWrite.name("id", first: true, to: &out)
        JCSWrite.string(id, to: &out)
        JCSWrite.name("role", to: &out)
        JCSWrite.string(role.rawValue, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

extension TransferRequest: JCSDirect {
    package func writeJCS(to out: inout [UInt8]) {
        // amount, code, creditAccount, debitAccount, id, kind, refs, target.
        out.append(UInt8(ascii: "{"))
        var first = true
        if let amount {
            JCSWrite.name("amount", first: true, to: &out)
            JCSWrite.unsigned(amount, to: &out)
            first = false
        }
        JCSWrite.name("code", first: first, to: &out)
        JCSWrite.unsigned(code, to: &out)
        if let creditAccount {
            JCSWrite.name("creditAccount", to: &out)
            JCSWrite.string(creditAccount, to: &out)
        }
        if let debitAccount {
            JCSWrite.name("debitAccount", to: &out)
            JCSWrite.string(debitAccount, to: &out)
        }
        JCSWrite.name("id", to: &out)
        JCSWrite.string(id, to: &out)
        JCSWrite.name("kind", to: &out)
        JCSWrite.string(kind.rawValue, to: &out)
        JCSWrite.name("refs", to: &out)
        JCSWrite.refs(refs, to: &out)
        if let target {
            JCSWrite.name("target", to: &out)
            JCSWrite.string(target, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension Transfer: JCSDirect {
    package func writeJCS(to out: inout [UInt8]) {
        // amount, auditSeq, code, creditAccount, debitAccount, id, kind, ledger, refs, target, timeMicros.
        out.append(UInt8(ascii: "{"))
        JCSWrite.name("amount", first: true, to: &out)
        JCSWrite.unsigned(amount, to: &out)
        JCSWrite.name("auditSeq", to: &out)
        JCSWrite.unsigned(auditSeq, to: &out)
        JCSWrite.name("code", to: &out)
        JCSWrite.unsigned(code, to: &out)
        JCSWrite.name("creditAccount", to: &out)
        JCSWrite.string(creditAccount, to: &out)
        JCSWrite.name("debitAccount", to: &out)
        JCSWrite.string(debitAccount, to: &out)
        JCSWrite.name("id", to: &out)
        JCSWrite.string(id, to: &out)
        JCSWrite.name("kind", to: &out)
        JCSWrite.string(kind.rawValue, to: &out)
        JCSWrite.name("ledger", to: &out)
        JCSWrite.string(ledger, to: &out)
        JCSWrite.name("refs", to: &out)
        JCSWrite.refs(refs, to: &out)
        if let target {
            JCSWrite.name("target", to: &out)
            JCSWrite.string(target, to: &out)
        }
        JCSWrite.name("timeMicros", to: &out)
        JCSWrite.signed(timeMicros, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

/// Swift's synthesized coding of a case with one unlabelled value: `{"case":{"_0":value}}`.
extension LedgerOutcome: JCSDirect where Value: JCSDirect {
    package func writeJCS(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        switch self {
        case .created: JCSWrite.name("created", first: true, to: &out)
        case .exists: JCSWrite.name("exists", first: true, to: &out)
        }
        out.append(UInt8(ascii: "{"))
        JCSWrite.name("_0", first: true, to: &out)
        value.writeJCS(to: &out)
        out.append(UInt8(ascii: "}"))
        out.append(UInt8(ascii: "}"))
    }
}
