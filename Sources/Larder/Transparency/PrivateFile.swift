#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small files that only their owner may read: signing keys and witness state. Written with
/// mode 0600 and flushed before the call returns, so that a crash leaves either the old file or
/// the new one, never a torn or world-readable one.
enum PrivateFile {
    /// Creates `path` with `contents`; refuses if anything (even a dangling link) is there.
    static func createExclusively(at path: String, contents: [UInt8]) throws(LarderError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST {
                throw LarderError(.validationFailed, "\(path) exists; refusing to overwrite it.")
            }
            throw failure("create", path, code)
        }
        do {
            try writeAll(fd, contents, path)
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
        close(fd)
        syncDirectory(of: path)
    }

    /// Replaces `path` with `contents` atomically: a new file beside it (mode 0600), flushed,
    /// then renamed over the old one.
    static func replaceAtomically(at path: String, contents: [UInt8]) throws(LarderError) {
        let temporary = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try createExclusively(at: temporary, contents: contents)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw failure("replace", path, code)
        }
        syncDirectory(of: path)
    }

    /// The bytes of `path`, a regular file of at most `bytesMax` bytes. With `ownerOnly`, refuses
    /// a file that its group or others may read or write.
    static func contents(at path: String, bytesMax: Int, ownerOnly: Bool) throws(LarderError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw LarderError(.notFound, "There is no file at \(path).", failurePoint: .open) }
            throw failure("open", path, code)
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw failure("inspect", path, errno) }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw LarderError(.validationFailed, "\(path) is not a regular file.")
        }
        let mode = status.st_mode & 0o777
        if ownerOnly, mode & 0o077 != 0 {
            throw LarderError(.validationFailed,
                              "\(path) has mode \(String(mode, radix: 8)); a private file must be readable by its owner only (chmod 600 \(path)).")
        }
        guard Int(status.st_size) <= bytesMax else {
            throw LarderError(.validationFailed, "\(path) has \(status.st_size) bytes; at most \(bytesMax) are expected.")
        }
        var bytes = [UInt8](repeating: 0, count: bytesMax + 1)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw failure("read", path, errno)
            }
            if got == 0 { break }
            count += got
        }
        guard count <= bytesMax else {
            throw LarderError(.validationFailed, "\(path) grew past \(bytesMax) bytes while being read.")
        }
        return Array(bytes[..<count])
    }

    private static func writeAll(_ fd: Int32, _ contents: [UInt8], _ path: String) throws(LarderError) {
        // umask may have narrowed the mode further; it can only have been narrowed, but say it exactly.
        guard fchmod(fd, 0o600) == 0 else { throw failure("protect", path, errno) }
        var written = 0
        while written < contents.count {
            let count = contents.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("write", path, errno)
            }
            written += count
        }
        guard fsync(fd) == 0 else { throw failure("flush", path, errno) }
    }

    /// Makes a create or rename durable. Best effort: some file systems refuse to sync a directory.
    private static func syncDirectory(of path: String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let fd = open(directory, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    private static func failure(_ action: String, _ path: String, _ code: Int32) -> LarderError {
        LarderError(.persistenceError, "Cannot \(action) \(path): \(String(cString: strerror(code))) (errno \(code)).",
                    failurePoint: .persist)
    }
}
