import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Larder

/// `larder checkpoint`: sign a checkpoint of the audit log now and print the signed note.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign a checkpoint of the audit log now (CHECKPOINT_SIGNED) and print the signed note.",
        discussion: "The key file must be outside the store's directory (see `larder key create`).")

    @OptionGroup var location: StoreLocation

    @Option(name: .customLong("signing-key"), help: "The signing key file (mode 0600, outside the store).")
    var signingKey: String

    func run() throws {
        let key = try SigningKeyFile.load(signingKey, store: location.db)
        let store = try location.open(readOnly: false)
        defer { store.close() }
        let signed = try store.signCheckpoint(with: key)
        Console.current.write(signed.note)
    }
}

/// `larder audit prove`: the inclusion proof of one record, as the admin server serves it.
struct AuditProveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Print the inclusion proof of one audit record (JSON, as GET /v1/audit/proof/inclusion).",
        discussion: "Without --tree-size the proof is against the whole log as it is now.")

    @OptionGroup var location: StoreLocation

    @Option(name: .long, help: "The record's sequence number.")
    var seq: UInt64

    @Option(name: .customLong("tree-size"), help: "The tree size to prove against (default: the head seq).")
    var treeSize: UInt64?

    func run() throws {
        let store = try location.open(readOnly: true)
        defer { store.close() }
        let seq = self.seq, treeSize = self.treeSize
        let proof = try store.read { view in
            try view.audit.inclusionProof(seq: seq, treeSize: treeSize ?? view.audit.head().seq)
        }
        Console.current.print(proof.jsonText)
    }
}

/// `larder witness`: checks that a box's log only grows, from its signed checkpoints.
struct WitnessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness",
        abstract: "Fetch a box's signed checkpoint, check it against the one saved last time, save it.",
        discussion: """
            Checks the signature with the verifier key, then that the log only grew since the checkpoint in the \
            state file (a consistency proof from the box), and saves the new checkpoint (atomically, mode 0600). \
            The first checkpoint is accepted as it is. Exits 1 and says why on a bad signature, a shrinking tree \
            or a fork, leaving the state file as it was; a fetch that fails exits with its error's status.
            """)

    @Option(name: .long, help: "The admin server, e.g. http://127.0.0.1:8089.")
    var url: String

    @Option(name: .long, help: "A token with the scope checkpoint:read.")
    var token: String

    @Option(name: .long, help: "The log's verifier key, NAME+<key ID>+<base64 key>.")
    var vkey: String

    @Option(name: .long, help: "The witness's state file: the last checkpoint accepted.")
    var state: String

    func run() async throws {
        let witness = Witness(verifierKey: try NoteVerifierKey(parsing: vkey), statePath: state)
        let source = try HTTPCheckpointSource(baseURL: url, token: token)
        let console = Console.current
        switch try await witness.observe(source) {
        case .success(.first(let checkpoint)):
            console.print("larder witness: accepted the first checkpoint of \(checkpoint.origin): \(checkpoint.treeSize) records, root \(checkpoint.rootHash.hexString)")
        case .success(.grew(let saved, let fetched)):
            console.print("larder witness: the log grew consistently from \(saved.treeSize) to \(fetched.treeSize) records, root \(fetched.rootHash.hexString)")
        case .success(.unchanged(let checkpoint)):
            console.print("larder witness: unchanged at \(checkpoint.treeSize) records, root \(checkpoint.rootHash.hexString)")
        case .failure(let rejection):
            console.error("larder witness: REJECTED: \(rejection)")
            throw VerifyFailed(status: 1)
        }
    }
}

/// Loads a signing key for a store, refusing a key file inside the store's directory: whoever
/// can rewrite the store must not also hold the key that signs for it.
enum SigningKeyFile {
    static func load(_ path: String, store: String) throws(LarderError) -> NoteSigningKey {
        let key = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        let directory = URL(fileURLWithPath: store).resolvingSymlinksInPath().standardizedFileURL.path
        if key == directory || key.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/") {
            throw LarderError(.validationFailed,
                              "The signing key \(path) is inside the store's directory \(store); keep it outside, where whoever can rewrite the store cannot read it.")
        }
        return try NoteSigningKey.load(from: path)
    }
}

/// A ``CheckpointSource`` over a box's admin server: `GET /v1/audit/checkpoint` and
/// `GET /v1/audit/proof/consistency`, with a bearer token. Foundation's URLSession (libcurl on
/// Linux), so the tool needs no HTTP client package of its own.
struct HTTPCheckpointSource: CheckpointSource {
    let baseURL: String
    let token: String

    /// Bytes of an answer at most: a note is at most 256 KiB, a proof about 4.5 KiB.
    static let responseBytesMax = 1 << 20
    static let timeoutSeconds = 30.0

    init(baseURL: String, token: String) throws(LarderError) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw LarderError(.validationFailed, "--url \(JSONWriter.quoted(baseURL)) is not an http(s) URL such as http://127.0.0.1:8089.")
        }
        self.baseURL = base
        self.token = token
    }

    func latestCheckpoint() async throws(LarderError) -> String {
        let body = try await get("/v1/audit/checkpoint")
        guard let text = String(validating: body, as: UTF8.self) else {
            throw LarderError(.validationFailed, "The checkpoint from \(baseURL) is not UTF-8 text.")
        }
        return text
    }

    func consistencyProof(from oldSize: UInt64, to newSize: UInt64) async throws(LarderError) -> [MerkleHash] {
        let body = try await get("/v1/audit/proof/consistency?from_size=\(oldSize)&to_size=\(newSize)")
        struct Document: Decodable {
            let from_size: UInt64
            let to_size: UInt64
            let proof: [String]
        }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(body)),
              document.from_size == oldSize, document.to_size == newSize, document.proof.count <= MerkleProof.hashesMax else {
            throw LarderError(.validationFailed, "The consistency proof from \(baseURL) is not the proof from \(oldSize) to \(newSize).")
        }
        var hashes: [MerkleHash] = []
        for hex in document.proof {
            guard let hash = MerkleHash(hex: hex) else {
                throw LarderError(.validationFailed, "The consistency proof from \(baseURL) holds \(JSONWriter.quoted(hex)), not a hash.")
            }
            hashes.append(hash)
        }
        return hashes
    }

    private func get(_ path: String) async throws(LarderError) -> [UInt8] {
        guard let url = URL(string: baseURL + path) else { preconditionFailure("a checked base URL and a fixed path") }
        var request = URLRequest(url: url, timeoutInterval: Self.timeoutSeconds)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw LarderError(.storageUnavailable, "GET \(url.absoluteString) failed: \(error.localizedDescription)",
                              failureClass: .externalDependency, failurePoint: .read)
        }
        guard data.count <= Self.responseBytesMax else {
            throw LarderError(.validationFailed, "GET \(url.absoluteString) answered \(data.count) bytes, more than \(Self.responseBytesMax).")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            // The admin server answers with the error contract's body: keep its code.
            struct Body: Decodable {
                let error_code: String
                let message: String
            }
            if let body = try? JSONDecoder().decode(Body.self, from: data),
               let code = LarderError.Code.allCases.first(where: { $0.rawValue == body.error_code }) {
                throw LarderError(code, "GET \(url.absoluteString) answered \(status) \(body.error_code): \(body.message)",
                                  failureClass: .externalDependency, failurePoint: .read)
            }
            throw LarderError(.storageUnavailable, "GET \(url.absoluteString) answered HTTP \(status).",
                              failureClass: .externalDependency, failurePoint: .read)
        }
        return Array(data)
    }
}
