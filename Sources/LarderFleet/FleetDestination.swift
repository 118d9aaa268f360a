import Foundation
public import Larder
public import PostgresNIO
import NIOSSL

/// Where the fleet database is: a PostgreSQL connection URL, parsed the way libpq reads one.
///
/// ```swift
/// let destination = try FleetDestination(url: "postgres://box_7@fleet-db.internal:5432/larder?sslmode=verify-full")
/// print(destination.redacted)   // postgres://box_7@fleet-db.internal:5432/larder (never the password)
/// ```
///
/// Understood: `postgres://` or `postgresql://`, user, password (percent-encoded; or the
/// `PGPASSWORD` environment variable when the URL has none), host, port (default 5432), database
/// (default: the user name), and the parameters `sslmode` (`disable`, `prefer` (default),
/// `require`, `verify-ca`, `verify-full`), `sslrootcert` (a PEM file of CA certificates; the
/// system's roots otherwise), `sslcert` + `sslkey` (a client certificate), `connect_timeout`
/// (seconds, default 10), `application_name`, and `host=/DIR` for a Unix socket directory.
/// Anything else is VALIDATION_FAILED, so that a misspelt `sslmode` never silently means "no TLS".
public struct FleetDestination: Sendable {
    /// TLS as libpq's `sslmode` names it.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, without checking its certificate (libpq's default).
        case prefer
        /// TLS or no connection, without checking the certificate.
        case require
        /// TLS, and the certificate must chain to a trusted root.
        case verifyCA = "verify-ca"
        /// TLS, a trusted certificate, and it must name the host.
        case verifyFull = "verify-full"
    }

    public let user: String
    public let password: String?
    /// A host name or address; nil for a Unix socket.
    public let host: String?
    /// The socket directory for `host=/DIR`.
    public let socketDirectory: String?
    public let port: Int
    public let database: String
    public let tlsMode: TLSMode
    public let rootCertificatePath: String?
    public let clientCertificatePath: String?
    public let clientKeyPath: String?
    public let connectTimeoutSeconds: Int
    public let applicationName: String

    /// Longest connect timeout a URL may ask for.
    public static let connectTimeoutSecondsMax = 300

    /// Parses a connection URL.
    ///
    /// - throws: VALIDATION_FAILED naming what is wrong.
    public init(url text: String) throws(LarderError) {
        try self.init(url: text, environment: ProcessInfo.processInfo.environment)
    }

    /// Parses a connection URL, reading `PGPASSWORD` from `environment`.
    public init(url text: String, environment: [String: String]) throws(LarderError) {
        func bad(_ detail: String) -> LarderError {
            LarderError(.validationFailed, "--postgres: \(detail) (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]).")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme,
              ["postgres", "postgresql"].contains(scheme.lowercased()) else {
            throw bad("not a postgres:// URL")
        }
        var socketDirectory: String?
        var tlsMode = TLSMode.prefer
        var rootCertificate: String?, clientCertificate: String?, clientKey: String?
        var timeout = 10
        var applicationName = "larder"
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw bad("sslmode \(JSONWriter.quoted(value)) is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tlsMode = mode
            case "sslrootcert": rootCertificate = value
            case "sslcert": clientCertificate = value
            case "sslkey": clientKey = value
            case "connect_timeout":
                guard let seconds = Int(value), (1...Self.connectTimeoutSecondsMax).contains(seconds) else {
                    throw bad("connect_timeout must be 1...\(Self.connectTimeoutSecondsMax) seconds")
                }
                timeout = seconds
            case "application_name": applicationName = value
            case "host":
                guard value.hasPrefix("/") else { throw bad("the host parameter must be a socket directory (/…)") }
                socketDirectory = value
            default:
                throw bad("unknown parameter \(JSONWriter.quoted(item.name))")
            }
        }
        guard (clientCertificate == nil) == (clientKey == nil) else { throw bad("sslcert and sslkey go together") }
        let host = components.host.flatMap { $0.isEmpty ? nil : $0 }
        guard host != nil || socketDirectory != nil else { throw bad("no host") }
        guard let user = components.user.flatMap({ $0.isEmpty ? nil : $0 }) else { throw bad("no user") }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw bad("port \(port) is out of range") }
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        guard !database.contains("/") else { throw bad("the database name contains /") }
        self.user = user
        self.password = components.password ?? environment["PGPASSWORD"]
        self.host = socketDirectory == nil ? host : nil
        self.socketDirectory = socketDirectory
        self.port = port
        self.database = database.isEmpty ? user : database
        self.tlsMode = tlsMode
        self.rootCertificatePath = rootCertificate
        self.clientCertificatePath = clientCertificate
        self.clientKeyPath = clientKey
        self.connectTimeoutSeconds = timeout
        self.applicationName = applicationName
    }

    /// The URL without the password: safe for logs, errors and the ship-state file.
    public var redacted: String {
        let user = self.user.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? self.user
        if let socketDirectory { return "postgres://\(user)@/\(database)?host=\(socketDirectory)&port=\(port)" }
        let host = self.host ?? ""
        let shown = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(shown):\(port)/\(database)"
    }

    /// The postgres-nio configuration: TLS context built here, so a bad certificate path is an
    /// error before the first connection.
    ///
    /// - throws: VALIDATION_FAILED when a certificate or key file cannot be loaded.
    public func configuration() throws(LarderError) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch tlsMode {
            case .disable:
                tls = .disable
            case .prefer, .require, .verifyCA, .verifyFull:
                var settings = TLSConfiguration.makeClientConfiguration()
                switch tlsMode {
                case .prefer, .require: settings.certificateVerification = .none
                case .verifyCA: settings.certificateVerification = .noHostnameVerification
                default: settings.certificateVerification = .fullVerification
                }
                if let rootCertificatePath { settings.trustRoots = .file(rootCertificatePath) }
                if let clientCertificatePath, let clientKeyPath {
                    settings.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificatePath).map { .certificate($0) }
                    settings.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKeyPath, format: .pem))
                }
                let context = try NIOSSLContext(configuration: settings)
                tls = tlsMode == .prefer ? .prefer(context) : .require(context)
            }
        } catch {
            throw LarderError(.validationFailed, "--postgres: the TLS settings could not be loaded: \(error)")
        }
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user,
                                  password: password, database: database)
        } else {
            configuration = .init(host: host!, port: port, username: user, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(Int64(connectTimeoutSeconds))
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }
}
