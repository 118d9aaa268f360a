import Larder
import Testing

/// Expects `body` to throw a ``LarderError`` with `code`.
func expectError<R>(_ code: LarderError.Code, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () throws -> R) {
    do {
        _ = try body()
        Issue.record("expected \(code), nothing was thrown. \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch let error as LarderError {
        #expect(error.code == code, "\(error.message) \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error). \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    }
}

/// ``expectError(_:_:sourceLocation:_:)`` for async bodies.
func expectError<R>(_ code: LarderError.Code, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () async throws -> R) async {
    do {
        _ = try await body()
        Issue.record("expected \(code), nothing was thrown. \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch let error as LarderError {
        #expect(error.code == code, "\(error.message) \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error). \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    }
}
