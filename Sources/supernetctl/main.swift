import Client
import CommandLineSupport
import Foundation
import Wire

#if canImport(Glibc)
import Glibc
#endif

let usage = """
    usage: supernetctl [--socket PATH] [--admin-socket PATH] [--json] COMMAND [options]
      ping                                   round trip to the daemon
      models | targets | strategies          what is loaded
      stats                                  the daemon's counters
      specialize --model NAME --target NAME [--latency-ms X] [--macs N] [--params N] [--memory-kb N]
                 [--strategy NAME] [--dtype f32|f16|int8] [--no-shuffle] [--deadline-ms N] --out FILE
      pareto --model NAME --target NAME [--points N] [--plot FILE.svg]
      plugins list | plugins load FILE | plugins unload NAME     (admin socket)
      targets calibrate NAME                                      (admin socket)
    The socket defaults to $SUPERNET_SOCKET, else /run/supernetd/client.sock; the admin socket to
    $SUPERNET_ADMIN_SOCKET, else /run/supernetd/admin.sock.
    Exit status: 0 ok, 2 infeasible budget, 64 usage, 65 unknown name or invalid argument, 69 daemon unavailable,
    75 overloaded or deadline exceeded, 77 permission denied, 1 anything else.
    """

/// Global options come before the command; the rest belongs to it.
struct GlobalOptions {
    var socket = ProcessInfo.processInfo.environment["SUPERNET_SOCKET"] ?? "/run/supernetd/client.sock"
    var adminSocket = ProcessInfo.processInfo.environment["SUPERNET_ADMIN_SOCKET"] ?? "/run/supernetd/admin.sock"
    var json = false
    var command: [String] = []
}

func parseGlobal(_ arguments: [String]) throws -> GlobalOptions {
    var options = GlobalOptions()
    var i = 0
    while i < arguments.count, arguments[i].hasPrefix("--") {
        let argument = arguments[i]
        switch argument {
        case "--json": options.json = true
        case "--socket", "--admin-socket":
            guard i + 1 < arguments.count else {
                throw CommandError.usage("\(argument) needs a path", hint: "supernetctl --help")
            }
            if argument == "--socket" {
                options.socket = arguments[i + 1]
            } else {
                options.adminSocket = arguments[i + 1]
            }
            i += 1
        case "--help": print(usage); exit(0)
        default:
            options.command = Array(arguments[i...])
            return options
        }
        i += 1
    }
    options.command = Array(arguments[i...])
    return options
}

/// Maps a client error to the documented exit status.
func exitCode(for error: ClientError) -> ExitCode {
    guard let code = error.code else {
        return .unavailable
    }
    switch code {
    case .unknownModel, .unknownTarget, .unknownStrategy, .invalidArgument: return .dataError
    case .permissionDenied: return .permission
    case .overloaded, .deadlineExceeded: return .temporaryFailure
    case .infeasibleBudget: return .infeasible
    default: return .failure
    }
}

runCommand("supernetctl") {
    var global = try parseGlobal(Array(CommandLine.arguments.dropFirst()))
    if global.command.contains("--json") {
        global.json = true
        global.command.removeAll { $0 == "--json" }
    }
    guard let name = global.command.first else {
        print(usage)
        throw CommandError.usage("missing command", hint: "supernetctl --help")
    }
    let rest = Array(global.command.dropFirst())
    do {
        try dispatch(name, rest, global)
    } catch let error as ClientError {
        throw CommandError(error.description, code: exitCode(for: error))
    }
}
