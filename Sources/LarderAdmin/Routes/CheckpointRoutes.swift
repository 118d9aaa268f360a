import HTTPTypes
import Hummingbird
import Larder

/// The audit log as a transparency log (docs/FORMAT.md section 14): signed checkpoints,
/// inclusion and consistency proofs, and the C2SP tlog-tiles layout under `/tlog/`.
///
/// `checkpoint:read` sees hashes only (checkpoints, proofs, hash tiles); those reads are not
/// recorded as FORENSIC_ACCESS, since they reveal no record's contents and a witness polls them
/// (docs/THREAT-MODEL.md). Entry bundles hold the records themselves: they need `audit:read` and
/// are recorded like every other data read.
enum CheckpointRoutes {
    static let all: [AdminRoute] = [
        AdminRoute(path: "/v1/audit/checkpoint", scope: .checkpointRead, handler: checkpoint),
        AdminRoute(path: "/v1/audit/proof/inclusion", scope: .checkpointRead, handler: inclusion),
        AdminRoute(path: "/v1/audit/proof/consistency", scope: .checkpointRead, handler: consistency),
        AdminRoute(path: "/tlog/checkpoint", scope: .checkpointRead, handler: checkpoint),
        AdminRoute(path: "/tlog/tile/entries/{tile_path}", routerPath: "/tlog/tile/entries/**", scope: .auditRead, handler: entries),
        AdminRoute(path: "/tlog/tile/{tile_path}", routerPath: "/tlog/tile/**", scope: .checkpointRead, handler: hashTile),
    ]

    static let checkpointContentType = "text/plain; charset=utf-8"
    static let tileContentType = "application/octet-stream"

    /// The newest checkpoint signed by the configured key, as its signed note.
    @Sendable static func checkpoint(_ call: AdminCall) async throws -> Response {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        guard let key = call.configuration.checkpointKey else {
            throw LarderError(.notFound,
                              "This server has no checkpoint key: start it with larder serve --signing-key FILE (AdminConfiguration.checkpointKey).")
        }
        let store = call.store
        guard let latest = try await offload({ try store.read { view in try view.audit.latestCheckpoint(signedBy: key) } }) else {
            throw LarderError(.notFound, "No checkpoint signed by \(key.name)+\(key.keyIDHex) is recorded yet.")
        }
        return Responses.text(latest.note, contentType: checkpointContentType)
    }

    @Sendable static func inclusion(_ call: AdminCall) async throws -> Response {
        let parameters = try QueryParameters(call.request.uri.query, allowed: ["seq", "tree_size"])
        guard let seq = try parameters.seq("seq", minimum: 1), let treeSize = try parameters.seq("tree_size", minimum: 1) else {
            throw LarderError(.validationFailed, "An inclusion proof needs seq and tree_size.")
        }
        let store = call.store
        let proof = try await offload { try store.read { view in try view.audit.inclusionProof(seq: seq, treeSize: treeSize) } }
        return Responses.json(proof.jsonText)
    }

    @Sendable static func consistency(_ call: AdminCall) async throws -> Response {
        let parameters = try QueryParameters(call.request.uri.query, allowed: ["from_size", "to_size"])
        guard let from = try parameters.seq("from_size"), let to = try parameters.seq("to_size") else {
            throw LarderError(.validationFailed, "A consistency proof needs from_size and to_size.")
        }
        let store = call.store
        let proof = try await offload { try store.read { view in try view.audit.consistencyProof(fromSize: from, toSize: to) } }
        return Responses.json(proof.jsonText)
    }

    /// `/tlog/tile/<L>/<N>[.p/<W>]`: hashes of the tree, 32 bytes each.
    @Sendable static func hashTile(_ call: AdminCall) async throws -> Response {
        guard case .hashes(let tile) = try parse(call) else { throw notATile(call) }
        let store = call.store
        let bytes = try await offload { try store.read { view in try view.audit.tileData(tile) } }
        return binary(bytes)
    }

    /// `/tlog/tile/entries/<N>[.p/<W>]`: the records of level-0 tile N, each after its `u16` length.
    @Sendable static func entries(_ call: AdminCall) async throws -> Response {
        guard case .entries(let tile) = try parse(call) else { throw notATile(call) }
        let store = call.store
        let bytes = try await offload { try store.read { view in try view.audit.entryBundle(tile) } }
        try await call.recordForensicAccess(filters: [("tile", tile.entriesPath)], resultCount: tile.width)
        return binary(bytes)
    }

    /// The tile the raw request path names, in its one canonical spelling; anything else is
    /// not found (as a static file server would answer).
    static func parse(_ call: AdminCall) throws(LarderError) -> TlogTile.Resource? {
        _ = try QueryParameters(call.request.uri.query, allowed: [])
        let path = call.request.uri.path
        guard path.hasPrefix("/tlog/") else { return nil }
        return TlogTile.parse(String(path.dropFirst("/tlog/".count)))
    }

    static func notATile(_ call: AdminCall) -> LarderError {
        LarderError(.notFound, "\(JSONWriter.quoted(call.request.uri.path)) is not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]).")
    }

    static func binary(_ bytes: [UInt8]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = tileContentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
