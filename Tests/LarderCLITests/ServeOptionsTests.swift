import ArgumentParser
@testable import LarderCLI
import LarderAdmin
import LarderTesting
import Testing

/// `larder serve`'s budget and cost options reach the server's configuration.
@Suite("larder serve options")
struct ServeOptionsTests {
    @Test func budgetAndCostOptionsConfigureTheServer() throws {
        let parsed = try LarderCommand.parseAsRoot([
            "serve", "--db", "/nonexistent", "--tokens", "/nonexistent.json", "--budget-units", "240",
            "--budget-window-seconds", "120", "--cost-page", "2", "--cost-verify", "60", "--cost-export", "30",
            "--cost-export-page", "3", "--expensive-max", "1",
        ])
        let serve = try #require(parsed as? ServeCommand)
        let configuration = try serve.adminConfiguration()
        #expect(configuration.budgetUnitsPerWindowMax == 240)
        #expect(configuration.budgetWindowSeconds == 120)
        #expect(configuration.costs.pageUnits == 2)
        #expect(configuration.costs.verifyUnits == 60)
        #expect(configuration.costs.exportUnits == 30)
        #expect(configuration.costs.exportPageUnits == 3)
        #expect(configuration.expensiveRequestsConcurrentMax == 1)
    }

    @Test func theDefaultsAreTheConfigurationDefaults() throws {
        let parsed = try LarderCommand.parseAsRoot(["serve", "--db", "/nonexistent", "--tokens", "/nonexistent.json"])
        let configuration = try #require(parsed as? ServeCommand).adminConfiguration()
        var expected = AdminConfiguration()
        expected.port = configuration.port
        #expect(configuration == expected)
    }

    /// A limit out of range is refused before the store is opened (2, VALIDATION_FAILED).
    @Test func aCostAboveTheBudgetIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "larder-serve")
        let result = await larder("serve", "--db", directory.path("db"), "--tokens", directory.path("tokens.json"),
                                  "--budget-units", "10", "--port", "0")
        #expect(result.status == 2, "\(result.err)")
        #expect(result.err.contains("costs.verifyUnits 20 is not in 1...10"))
    }
}
