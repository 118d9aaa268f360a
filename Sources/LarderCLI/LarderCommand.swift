public import ArgumentParser
import Foundation
import CoreMetrics
import Larder
import Logging

/// `larder`: the kitchen-day demo, the admin server, verification, audit queries, backups and
/// statistics over a Larder store, and shipping to and querying the fleet database.
public struct LarderCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "larder",
        abstract: "An embedded, LMDB-backed store for operational truth on a kitchen edge box.",
        discussion: """
            Errors are printed as the error contract's JSON body on standard error, and the exit
            status names the error: 2 VALIDATION_FAILED, 3 AUTH_REQUIRED or PERMISSION_DENIED,
            4 NOT_FOUND, 5 CONFLICT, 6 COMPUTE_ERROR, 7 AUDIT_FAILED, 8 STORAGE_UNAVAILABLE,
            9 PERSISTENCE_ERROR; `verify` and `fleet verify` exit 1 when a log is damaged; 64 is a usage error.
            """,
        subcommands: [DemoCommand.self, ServeCommand.self, VerifyCommand.self, AuditCommand.self, IncidentsCommand.self,
                      LedgerCommand.self, ProposalsCommand.self, ReportCommand.self, BackupCommand.self, MigrateCommand.self, StatsCommand.self,
                      TokenCommand.self, KeyCommand.self, CheckpointCommand.self, WitnessCommand.self, ShipCommand.self,
                      FleetCommand.self],
        defaultSubcommand: nil
    )

    public init() {}

    /// Parses `arguments`, runs the command and returns the process exit status. Errors are
    /// printed on ``Console/current``: Larder errors as the contract's JSON body, usage errors as
    /// ArgumentParser's message.
    public static func run(arguments: [String]) async -> Int32 {
        let console = Console.current
        do {
            var command = try parseAsRoot(arguments)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as LarderError {
            console.error("larder: \(error.code.rawValue): \(error.message)")
            console.error(error.jsonBody)
            return error.code.exitStatus
        } catch let exit as VerifyFailed {
            return exit.status
        } catch {
            let status = exitCode(for: error).rawValue
            let message = fullMessage(for: error)
            if !message.isEmpty {
                if status == 0 { console.print(message) } else { console.error(message) }
            }
            return status
        }
    }
}

/// Thrown by `verify` after it printed its report, to exit non-zero.
struct VerifyFailed: Error {
    let status: Int32
}

/// The `--db` option shared by the commands that open a store.
struct StoreLocation: ParsableArguments {
    @Option(name: .long, help: "The store directory.")
    var db: String

    /// Opens an existing store. Read-only opens work while another process writes. Writable
    /// opens (serve, backup) neither create a store nor record a policy or limits: the tool
    /// applies no responses, and must not replace the application's policy or map maximum with
    /// its defaults (it reports map use against the limits the application recorded).
    func open(readOnly: Bool, logger: Logger = Store.silentLogger,
              metricsFactory: any MetricsFactory = MetricsSystem.factory) throws(LarderError) -> Store {
        var options = Store.Options(readOnly: readOnly, logger: logger, metricsFactory: metricsFactory)
        options.recordsPolicy = false
        options.recordsLimits = false
        options.createIfMissing = false
        return try Store.open(at: db, options: options)
    }
}
