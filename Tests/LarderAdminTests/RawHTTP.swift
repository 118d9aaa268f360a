import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A deliberately dumb HTTP/1 client over a blocking loopback socket: it sends exactly the bytes
/// it is given (malformed requests included, which no HTTP client library will send) and reads
/// back one response as the server framed it.
///
/// Reads stop at the end of the response's framing (Content-Length, a chunked terminator), at
/// end of file, or after `readTimeoutSeconds` without data: a safety bound against a server that
/// never answers, not a timed assertion (a test that hits it fails on what it did not read).
struct RawHTTP {
    let port: Int
    // Generous: a bound against a hung server, not a latency check. Under a loaded machine the
    // server's answer can wait for a cooperative thread that a long synchronous test holds.
    var readTimeoutSeconds = 60

    /// One parsed response.
    struct Response: CustomStringConvertible {
        var status = 0
        var headers: [(name: String, value: String)] = []
        var body = ""
        var raw = ""
        /// Set only by `exchange(…, checkClosed: true)`.
        var closed = false

        /// The value of the first header called `name` (case-insensitive).
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        /// The values of every header called `name`.
        func headers(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }

        /// The body as a JSON object, or nil.
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }

        var description: String { raw.count > 2_000 ? String(raw.prefix(2_000)) + "…" : raw }
    }

    /// Sends `request` (bytes as given) and reads one response. With `isHead`, a response has no
    /// body whatever its headers say. With `checkClosed`, waits for the server to close the
    /// connection after the response (up to the read timeout) and says whether it did.
    func exchange(_ request: [UInt8], isHead: Bool = false, checkClosed: Bool = false) throws -> Response {
        let socket = try connect()
        defer { close(socket) }
        try send(socket, request)
        var reader = Reader(socket: socket)
        var response = try reader.response(isHead: isHead)
        if checkClosed { response.closed = reader.buffer.isEmpty && !reader.fill() && !reader.timedOut }
        return response
    }

    func exchange(_ request: String, isHead: Bool = false, checkClosed: Bool = false) throws -> Response {
        try exchange(Array(request.utf8), isHead: isHead, checkClosed: checkClosed)
    }

    /// Sends several requests on one connection (pipelined) and reads one response per entry of
    /// `heads` (true for a HEAD request), in order.
    func pipeline(_ request: String, heads: [Bool]) throws -> [Response] {
        let socket = try connect()
        defer { close(socket) }
        try send(socket, Array(request.utf8))
        var reader = Reader(socket: socket)
        return try heads.map { isHead in try reader.response(isHead: isHead) }
    }

    struct SocketError: Error, CustomStringConvertible {
        let description: String
    }

    private func connect() throws -> Int32 {
        #if canImport(Glibc)
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let socket = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard socket >= 0 else { throw SocketError(description: "socket() failed: \(errno)") }
        var timeout = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                #if canImport(Glibc)
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                #else
                Darwin.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                #endif
            }
        }
        guard result == 0 else {
            close(socket)
            throw SocketError(description: "connect() to port \(port) failed: \(errno)")
        }
        return socket
    }

    private func send(_ socket: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { buffer in
                #if canImport(Glibc)
                Glibc.send(socket, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
                #else
                Darwin.send(socket, buffer.baseAddress, buffer.count, 0)
                #endif
            }
            // The server may answer and close before it has read everything (a refusal): what
            // it sent back is still readable, so stop sending and read.
            guard sent > 0 else { return }
            offset += sent
        }
    }

    /// Buffered reads from the socket, parsing one response at a time.
    private struct Reader {
        let socket: Int32
        var buffer: [UInt8] = []
        var eof = false
        /// The last read gave up after the read timeout (the peer neither sent nor closed).
        var timedOut = false

        /// Reads more bytes; false at end of file, on a reset or after the read timeout.
        mutating func fill() -> Bool {
            guard !eof else { return false }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                timedOut = count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                eof = true
                return false
            }
            buffer += chunk[0..<count]
            return true
        }

        mutating func response(isHead: Bool) throws -> Response {
            var response = Response()
            let separator: [UInt8] = Array("\r\n\r\n".utf8)
            var headEnd: Int?
            while headEnd == nil {
                headEnd = buffer.firstRange(of: separator)?.upperBound
                if headEnd == nil, !fill() { break }
            }
            guard let headEnd else {
                response.raw = String(decoding: buffer, as: UTF8.self)
                buffer.removeAll()
                return response
            }
            let head = String(decoding: buffer[0..<headEnd], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            let statusLine = lines.removeFirst()
            response.status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                response.headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            var rest = Array(buffer[headEnd...])
            var body: [UInt8] = []
            let noBody = isHead || response.status == 204 || response.status == 304 || (100..<200).contains(response.status)
            if noBody {
                // Nothing more belongs to this response.
            } else if let length = response.header("Content-Length").flatMap(Int.init) {
                while rest.count < length, fill() { rest = Array(buffer[headEnd...]) }
                body = Array(rest.prefix(length))
                rest = Array(rest.dropFirst(length))
            } else if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
                let terminator: [UInt8] = Array("0\r\n\r\n".utf8)
                while rest.firstRange(of: terminator) == nil, fill() { rest = Array(buffer[headEnd...]) }
                var decoded: [UInt8] = []
                var index = 0
                while let lineEnd = rest[index...].firstRange(of: Array("\r\n".utf8)) {
                    let size = Int(String(decoding: rest[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
                    index = lineEnd.upperBound
                    if size == 0 {
                        index = min(rest.count, index + 2)
                        break
                    }
                    decoded += rest[index..<min(rest.count, index + size)]
                    index = min(rest.count, index + size + 2)
                }
                body = decoded
                rest = Array(rest[index...])
            } else {
                // Delimited by the end of the connection.
                while fill() {}
                body = Array(buffer[headEnd...])
                rest = []
            }
            response.body = String(decoding: body, as: UTF8.self)
            response.raw = head + response.body
            buffer = rest
            return response
        }
    }
}
