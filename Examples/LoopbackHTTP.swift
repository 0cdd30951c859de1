import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import ShmIPC
import Synchronization

// The outside world of tutorial 001's last two programs, on this machine: a Hummingbird server
// on 127.0.0.1 (a port the system picks) stands in for the mail API and for www.baidu.com;
// AsyncHTTPClient is the client (`requests`, and the browsers' page loads).

/// The mail API the HTTP sync job calls: `PUT /mail/receiveSendedAndRubbishMail` with a form
/// (`userId`, `userName`, `enterpriseId`, `flag`), answering `{"code": 1, "data": 0, "msg": "成功"}`.
enum MailAPI {
    /// What the tutorial's `requests.put(url, data=parameter)` sends.
    struct Form: Codable {
        var userId: String
        var userName: String
        var enterpriseId: String
        var flag: String
    }

    struct Reply: ResponseEncodable {
        var code: Int
        var data: Int
        var msg: String
    }

    /// `syc_email(userID, userName)`'s arguments, and where the API is.
    struct Job: Codable {
        var userID: String
        var userName: String
        var url: String
    }

    // def syc_email(userID, userName): …
    static let sycEmail = Entry("t001-syc-email") { (job: Job) in
        say("Start synchronizing \("email") \(ctime())")
        let parameter = Form(userId: job.userID, userName: job.userName, enterpriseId: "10330", flag: "sended")
        let data = try blockingOn { try await put(parameter, to: job.url) }
        say(data.pythonDumps(indent: 4))
        say("接口调用已经返回结果,本次同步结束")
    }

    /// `requests.put(url, data=form).json()`.
    static func put(_ form: Form, to url: String) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url)
        request.method = .PUT
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: try URLEncodedFormEncoder().encode(form)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else { throw LoopbackError("the API answered \(response.status)") }
        return try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
    }

    /// Runs the API on a loopback port while `body` runs with its URL.
    static func serve(_ body: (String) throws -> Void) throws {
        let router = Router()
        router.put("/mail/receiveSendedAndRubbishMail") { request, context -> Reply in
            let form = try await URLEncodedFormDecoder().decode(Form.self, from: request, context: context)
            guard form.enterpriseId == "10330", form.flag == "sended", !form.userId.isEmpty else {
                throw HTTPError(.badRequest, message: "unknown enterprise or flag")
            }
            return Reply(code: 1, data: 0, msg: "成功")
        }
        try LoopbackServer.run(router) { port in try body("http://127.0.0.1:\(port)/mail/receiveSendedAndRubbishMail") }
    }
}

/// A browser a WebDriver would start, standing in for Chrome, Firefox and IE: `get(url)` loads
/// the page (its HTML) over HTTP, `quit()` closes the browser.
final class LoopbackBrowser {
    let name: String
    private let client = HTTPClient(eventLoopGroupProvider: .singleton)
    private(set) var page: String?

    private init(name: String) { self.name = name }

    // webdriver.Chrome(), webdriver.Firefox(), webdriver.Ie()
    static func chrome() throws -> LoopbackBrowser { LoopbackBrowser(name: "chrome") }
    static func firefox() throws -> LoopbackBrowser { LoopbackBrowser(name: "firefox") }
    static func ie() throws -> LoopbackBrowser { LoopbackBrowser(name: "ie") }

    /// Loads `url`; throws unless the server answers 200 with a page.
    func get(_ url: String) throws {
        let client = self.client
        page = try blockingOn {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw LoopbackError("\(url) answered \(response.status)") }
            return String(buffer: body)
        }
    }

    /// Closes the browser.
    func quit() {
        let client = self.client
        try? blockingOn { try await client.shutdown() }
    }

    /// Serves a page at `/` while `body` runs with its URL (the tutorial's http://www.baidu.com).
    static func servePage(_ body: (String) throws -> Void) throws {
        let router = Router()
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "<html><head><title>百度一下,你就知道</title></head><body></body></html>")))
        }
        try LoopbackServer.run(router) { port in try body("http://127.0.0.1:\(port)/") }
    }
}

/// Runs a Hummingbird application on 127.0.0.1 (a port the system picks) while `body` runs with
/// the port, on this thread; then stops it.
enum LoopbackServer {
    static func run(_ router: Router<BasicRequestContext>, _ body: (Int) throws -> Void) throws {
        let port = Mutex<Int?>(nil)
        var logger = Logger(label: "loopback")
        logger.logLevel = .warning
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } }, logger: logger)
        // Stopped as a service is (gracefully: the connections close, nothing is cut off).
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let server = Task.detached { try await group.run() }
        defer {
            _ = try? blockingOn {
                await group.triggerGracefulShutdown()
                try await server.value
            }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while port.withLock({ $0 }) == nil {
            guard ContinuousClock.now < deadline else { throw LoopbackError("the loopback server did not start") }
            usleep(1000)
        }
        try body(port.withLock { $0! })
    }
}

struct LoopbackError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` as a task and blocks this thread until it ends: the examples' entry points and
/// programs are synchronous, as the tutorials' are.
func blockingOn<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) throws -> Result {
    let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
    Task.detached {
        let result: Swift.Result<Result, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        outcome.withLock { $0 = result }
    }
    while true {
        if let result = outcome.withLock({ $0 }) { return try result.get() }
        usleep(1000)
    }
}
