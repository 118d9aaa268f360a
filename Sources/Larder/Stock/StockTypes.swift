/// Where stock is kept: a hub, and optionally a bin in it.
///
/// ```swift
/// let shelf = StockLocation(hub: "central", bin: "A3")   // "central/A3"
/// ```
public struct StockLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var hub: String
    public var bin: String?

    public init(hub: String, bin: String? = nil) {
        self.hub = hub
        self.bin = bin
    }

    /// `hub/bin`, or `hub` without a bin.
    public var description: String { bin.map { "\(hub)/\($0)" } ?? hub }

    func validate() throws(LarderError) {
        try StockAccounts.validateName(hub, field: "hub", max: StockAccounts.locationNameBytesMax)
        if let bin { try StockAccounts.validateName(bin, field: "bin", max: StockAccounts.locationNameBytesMax) }
    }
}

/// The ledger accounts that hold stock. Each item has its own ledger (`stock:<item>`), so a
/// transfer can never turn one item into another; on it, one account per location (which may
/// never go below zero) and three counterparts: where receipts come from, where issues go, and
/// where cycle-count differences are booked. Quantities are whole units of the item.
///
/// ```swift
/// StockAccounts.location(item: "tomato", at: StockLocation(hub: "central", bin: "A3"))   // "stock:tomato@central/A3"
/// ```
public enum StockAccounts {
    /// Items: 1 to 40 bytes; hubs and bins: 1 to 32 bytes; each of letters, digits, `.`, `_` and
    /// `-` (no `@`, `/` or `:`, which separate the parts of an account id).
    public static let itemBytesMax = 40
    public static let locationNameBytesMax = 32

    /// Account codes.
    public static let locationCode: UInt16 = 40
    public static let receivedCode: UInt16 = 41
    public static let issuedCode: UInt16 = 42
    public static let adjustmentsCode: UInt16 = 43

    /// Transfer codes.
    public static let receiptCode: UInt16 = 1
    public static let issueCode: UInt16 = 2
    public static let moveCode: UInt16 = 3
    public static let adjustmentCode: UInt16 = 4

    /// `stock:<item>`.
    public static func ledger(item: String) -> String { "stock:\(item)" }
    /// `stock:<item>@<hub>` or `stock:<item>@<hub>/<bin>`.
    public static func location(item: String, at location: StockLocation) -> String { "stock:\(item)@\(location)" }
    /// `stock:<item>:received`: debited by every receipt.
    public static func received(item: String) -> String { "stock:\(item):received" }
    /// `stock:<item>:issued`: credited by every issue.
    public static func issued(item: String) -> String { "stock:\(item):issued" }
    /// `stock:<item>:adjustments`: the other side of every cycle-count difference.
    public static func adjustments(item: String) -> String { "stock:\(item):adjustments" }

    static func validateName(_ name: String, field: String, max: Int) throws(LarderError) {
        let valid = (1...max).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): true
            default: false
            }
        }
        guard valid else {
            throw LarderError(.validationFailed, "The \(field) \(JSONWriter.quoted(name)) must be 1 to \(max) bytes of letters, digits, . _ and -.")
        }
    }

    static func validateItem(_ item: String) throws(LarderError) {
        try validateName(item, field: "item", max: itemBytesMax)
    }

    static func locationAccount(item: String, at location: StockLocation) -> NewAccount {
        var refs: [CorrelationRef] = [.item(item), CorrelationRef("hub", location.hub)]
        if location.bin != nil { refs.append(CorrelationRef("bin", location.description)) }
        return NewAccount(id: Self.location(item: item, at: location), ledger: ledger(item: item), code: locationCode,
                          flags: .debitsMustNotExceedCredits, refs: refs)
    }

    static func counterpart(_ id: String, item: String, code: UInt16) -> NewAccount {
        NewAccount(id: id, ledger: ledger(item: item), code: code, refs: [.item(item)])
    }
}

/// A cycle count as stored: what was counted where, what the ledger expected, and the
/// adjustment that reconciled the two.
public struct StockCount: Sendable, Hashable, Codable {
    /// The caller's countID, or `count-<seq>` (seq of its `STOCK_COUNTED` record).
    public let id: String
    public let item: String
    public let location: StockLocation
    /// The location's quantity on the ledger just before the count.
    public let expected: UInt64
    public let counted: UInt64
    /// counted − expected: booked from the location to the adjustments account when negative
    /// (a shortfall), the other way when positive.
    public let adjustment: Int64
    /// `<id>.adjust`; nil when the count matched.
    public let adjustmentTransferID: String?
    public let countedBy: ActorIdentity
    public let timeMicros: UnixMicros
    /// The `STOCK_COUNTED` record.
    public let auditSeq: UInt64

    static let formatVersion: UInt8 = 1

    /// docs/FORMAT.md section 9.9.
    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 128)
        writer.write(Self.formatVersion)
        writer.write(string: item)
        writer.write(string: location.hub)
        writer.write(optional: location.bin)
        writer.write(expected)
        writer.write(counted)
        writer.write(adjustment)
        writer.write(optional: adjustmentTransferID)
        writer.write(string: countedBy.id)
        writer.write(string: countedBy.role.rawValue)
        writer.write(timeMicros)
        writer.write(auditSeq)
        return writer.bytes
    }

    static func decode(id: String, _ bytes: [UInt8]) throws(LarderError) -> StockCount {
        var reader = ByteReader(bytes)
        guard try reader.readUInt8() == formatVersion else { throw ByteReader.malformed("stock count \(id) format version") }
        let item = try reader.readString()
        let location = StockLocation(hub: try reader.readString(), bin: try reader.readOptionalString())
        let expected = try reader.readUInt64()
        let counted = try reader.readUInt64()
        let adjustment = try reader.readInt64()
        let transfer = try reader.readOptionalString()
        let actorID = try reader.readString()
        let roleText = try reader.readString()
        guard let role = Role(rawValue: roleText) else { throw ByteReader.malformed("stock count role \(roleText)") }
        let time = try reader.readInt64()
        let seq = try reader.readUInt64()
        try reader.expectEnd()
        return StockCount(id: id, item: item, location: location, expected: expected, counted: counted, adjustment: adjustment,
                          adjustmentTransferID: transfer, countedBy: ActorIdentity(id: actorID, role: role), timeMicros: time,
                          auditSeq: seq)
    }
}

extension AuditEvent {
    public static let stockCounted: AuditEvent = "STOCK_COUNTED"
}

extension CorrelationRef {
    /// A stock item: carried by its accounts, movements and counts, and by incidents (a supply
    /// incident, say) that affect it.
    public static func item(_ id: String) -> CorrelationRef { .init("item", id) }
    /// A cycle count.
    public static func stockCount(_ id: String) -> CorrelationRef { .init("stock_count", id) }
}
