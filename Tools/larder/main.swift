import Foundation
import LarderCLI

// The `larder` tool: every command lives in LarderCLI so that tests can drive it in-process.
let status = await LarderCommand.run(arguments: Array(CommandLine.arguments.dropFirst()))
exit(status)
