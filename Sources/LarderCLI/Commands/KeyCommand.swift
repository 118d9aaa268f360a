import ArgumentParser
import Larder

/// `larder key`: checkpoint signing keys (C2SP signed-note Ed25519 keys).
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "Manage checkpoint signing keys.",
                                                    subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Create an Ed25519 signing key for checkpoints; prints the verifier key to give auditors.",
            discussion: """
                The key file is written with mode 0600 and never over an existing file. Keep it outside the \
                store's directory: whoever can rewrite the store must not also hold the key that signs for it. \
                The name is the checkpoint origin, e.g. kitchen.example/larder (no spaces, no '+').
                """)

        @Option(name: .long, help: "The key name, which is also the checkpoint origin.")
        var name: String

        @Option(name: .long, help: "The private key file to create (refused if it exists).")
        var out: String

        func run() throws {
            let key = try NoteSigningKey.generate(name: name)
            try key.write(to: out)
            let console = Console.current
            console.error("larder: wrote the signing key of \(name) to \(out) (mode 0600); its verifier key is:")
            console.print(key.verifierKey.description)
        }
    }
}
