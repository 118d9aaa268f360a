import Foundation
import Larder
import LarderTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real full disk: a small ext4 file system on a loop device, filled to a few bytes or KiB.
/// Creating a store there must fail with STORAGE_UNAVAILABLE and leave nothing behind (never a
/// SIGBUS, never a half-made store); an existing store keeps reading, refuses writes cleanly,
/// and writes again once there is room. Every store operation runs in a child process, so that
/// a crash is a failed expectation rather than the end of the test run.
///
/// Needs root (to mount); skipped otherwise. CI runs as root.
@Suite("Disk full")
struct DiskFullTests {
    let fixture = builtProductPath("larder-fixture")

    @Test(.enabled(if: geteuid() == 0, "needs root to mount a loop file system"))
    func aNearlyFullDiskFailsCleanly() async throws {
        guard let mount = try LoopMount(sizeBytes: 16 << 20) else { return }
        defer { mount.remove() }
        let existing = mount.path("existing")
        let created = try await runChild(["create", existing])
        #expect(created.status == 0 && created.output.hasPrefix("CREATED"), "\(created)")

        var levels: [Int] = []
        for free in [0, 1 << 10, 2 << 10, 4 << 10, 16 << 10, 64 << 10, 512 << 10] {
            let left = try mount.fill(leavingBytes: free)
            levels.append(left)
            let new = mount.path("new-\(free)")
            let attempt = try await runChild(["create", new])
            #expect(!attempt.crashed, "creating a store with \(left) bytes free crashed: \(attempt)")
            #expect(attempt.status == 1, "\(left) bytes free: \(attempt)")
            #expect(attempt.error.contains("\"error_code\":\"STORAGE_UNAVAILABLE\""), "\(attempt.error)")
            #expect(attempt.error.contains("\"can_retry\":true"), "\(attempt.error)")
            #expect(!FileManager.default.fileExists(atPath: new), "a half-created store was left with \(left) bytes free")

            // With nothing free, write past what the store's file already holds (its first MiB is
            // reserved at creation), so that the disk-full path is taken.
            let write = try await runChild(["write", existing, free == 0 ? "500" : "3", "full-\(free)", "3000"])
            #expect(!write.crashed, "writing with \(left) bytes free crashed: \(write)")
            let refusedAsFull = write.status == 1 && write.error.contains("\"error_code\":\"STORAGE_UNAVAILABLE\"")
            #expect(write.status == 0 || refusedAsFull, "\(left) bytes free: \(write)")
            if free == 0 { #expect(refusedAsFull, "\(write)") }
            let read = try await runChild(["head", existing])
            #expect(read.status == 0 && read.output.hasPrefix("HEAD"), "reading with \(left) bytes free: \(read)")
        }

        print("Disk full: tried creating a store with \(levels) bytes free")
        // Room again: the same calls succeed, and the existing store verifies.
        _ = try mount.fill(leavingBytes: 8 << 20)
        let again = try await runChild(["create", mount.path("new-after")])
        #expect(again.status == 0, "\(again)")
        let write = try await runChild(["write", existing, "3", "after", "100"])
        #expect(write.status == 0, "\(write)")
        let store = try Store.open(at: existing, options: Store.Options(readOnly: true))
        defer { store.close() }
        #expect(try store.verify().isIntact)
    }

    struct ChildResult: CustomStringConvertible {
        let status: Int32
        let crashed: Bool
        let output: String
        let error: String
        var description: String { "status \(status)\(crashed ? " (signal)" : ""), out: \(output) err: \(error)" }
    }

    func runChild(_ arguments: [String]) async throws -> ChildResult {
        let fixture = self.fixture
        return try await onOwnThread { try Self.runChild(fixture: fixture, arguments) }
    }

    static func runChild(fixture: String, _ arguments: [String]) throws -> ChildResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fixture)
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        let errData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ChildResult(status: process.terminationStatus, crashed: process.terminationReason == .uncaughtSignal,
                           output: String(decoding: outData, as: UTF8.self), error: String(decoding: errData, as: UTF8.self))
    }
}

/// An ext4 file system in a file, mounted on a loop device; unmounted and removed by `remove()`.
final class LoopMount {
    let directory: TemporaryDirectory
    let mountPoint: String
    private let filler: String

    /// Nil (with the reason printed) when this machine cannot mount one.
    init?(sizeBytes: Int) throws {
        directory = try TemporaryDirectory(prefix: "larder-diskfull")
        mountPoint = directory.path("mnt")
        filler = mountPoint + "/filler"
        let image = directory.path("fs.img")
        guard FileManager.default.createFile(atPath: image, contents: nil), truncate(image, off_t(sizeBytes)) == 0 else {
            print("Disk full: skipped, cannot make the image file")
            return nil
        }
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // 1 KiB blocks for fine-grained free space; no blocks reserved for root (the test runs as root).
        guard let mkfs = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            print("Disk full: skipped, mkfs.ext4 is not installed")
            return nil
        }
        let made = try runProcess(mkfs, ["-q", "-F", "-b", "1024", "-m", "0", image])
        guard made.status == 0 else {
            print("Disk full: skipped, mkfs.ext4 failed: \(made.error)")
            return nil
        }
        let mounted = try runProcess("/usr/bin/mount", ["-o", "loop", image, mountPoint])
        guard mounted.status == 0 else {
            print("Disk full: skipped, cannot mount a loop file system here: \(mounted.error)")
            return nil
        }
    }

    func path(_ component: String) -> String { mountPoint + "/" + component }

    /// Sizes the filler file so that about `bytes` stay free; returns the free bytes reached.
    func fill(leavingBytes bytes: Int) throws -> Int {
        let fd = open(filler, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        if freeBytes() < bytes {
            // Give back what is missing.
            let size = Int(lseek(fd, 0, SEEK_END))
            _ = ftruncate(fd, off_t(max(0, size - (bytes - freeBytes()))))
        }
        // Then take what is too much, in steps that halve when the file system refuses them.
        var step = freeBytes() - bytes
        while step >= 1 << 10 {
            let size = Int(lseek(fd, 0, SEEK_END))
            if posix_fallocate(fd, 0, off_t(size + step)) == 0 {
                step = freeBytes() - bytes
            } else {
                step /= 2
            }
        }
        fsync(fd)
        return freeBytes()
    }

    func freeBytes() -> Int {
        var stats = statvfs()
        guard statvfs(mountPoint, &stats) == 0 else { return 0 }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }

    /// Unmounts (lazily when busy) and removes the image.
    func remove() {
        if (try? runProcess("/usr/bin/umount", [mountPoint]))?.status != 0 {
            _ = try? runProcess("/usr/bin/umount", ["-l", mountPoint])
        }
    }
}
