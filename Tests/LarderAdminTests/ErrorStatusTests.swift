import Larder
import LarderAdmin
import Testing

/// The admin server maps the contract's codes to HTTP statuses (the README's Errors table), and
/// adds METHOD_NOT_ALLOWED of its own.
@Suite("Error statuses")
struct ErrorStatusTests {
    @Test func everyCodeHasItsStatus() {
        let expected: [LarderError.Code: Int] = [
            .validationFailed: 400, .authRequired: 401, .permissionDenied: 403, .notFound: 404, .methodNotAllowed: 405,
            .conflict: 409, .computeError: 422, .rateLimited: 429, .persistenceError: 500, .auditFailed: 500,
            .storageUnavailable: 503,
        ]
        for code in LarderError.Code.allCases + [.methodNotAllowed] {
            #expect(code.httpStatus == expected[code], "\(code)")
            #expect(LarderError(code, "x").httpStatus == expected[code], "\(code)")
        }
        #expect(!LarderError.Code.allCases.contains(.methodNotAllowed), "a code of the admin server's own")
    }
}
