import Larder
import LarderCLI
import Testing

/// The `larder` tool maps the contract's codes to exit statuses (`larder --help` lists them).
@Suite("Exit statuses")
struct ExitStatusTests {
    @Test func everyCodeHasItsStatus() {
        let expected: [LarderError.Code: Int32] = [
            .validationFailed: 2, .authRequired: 3, .permissionDenied: 3, .notFound: 4, .conflict: 5, .computeError: 6,
            .rateLimited: 9, .persistenceError: 9, .auditFailed: 7, .storageUnavailable: 8,
        ]
        for code in LarderError.Code.allCases {
            #expect(code.exitStatus == expected[code], "\(code)")
        }
    }
}
