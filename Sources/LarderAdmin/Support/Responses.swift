import HTTPTypes
import Hummingbird
import Larder

/// Response helpers: one place decides content types and how errors are rendered.
enum Responses {
    static let jsonContentType = "application/json; charset=utf-8"
    static let ndjsonContentType = "application/x-ndjson; charset=utf-8"
    static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

    static func json(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        text(body, contentType: jsonContentType, status: status)
    }

    static func json(status: HTTPResponse.Status = .ok, _ body: (inout JSONWriter) -> Void) -> Response {
        var writer = JSONWriter()
        writer.object(body)
        return json(utf8: writer.utf8, status: status)
    }

    /// A JSON body from its UTF-8 bytes (what ``JSONWriter`` writes), without a `String` between.
    static func json(utf8 body: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = jsonContentType
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func text(_ body: String, contentType: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    /// The contract body of `error`, under its status (or `status` where HTTP has a more precise
    /// one, such as 414 and 431), with `Retry-After` for retryable capacity errors and any
    /// `headers` that belong to the refusal (`Allow` for 405).
    static func error(_ error: LarderError, requestID: String, status: HTTPResponse.Status? = nil,
                      headers: HTTPFields = [:]) -> Response {
        let error = error.withRequestID(requestID)
        var response = json(error.jsonBody, status: status ?? HTTPResponse.Status(code: error.httpStatus))
        if error.retryable, let seconds = error.retryAfterSeconds {
            response.headers[.retryAfter] = String(seconds)
        }
        for field in headers { response.headers[field.name] = field.value }
        return response
    }
}
