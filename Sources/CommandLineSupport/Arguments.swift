#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses shared by the executables (sysexits.h values where one fits).
public enum ExitCode: Int32, Sendable {
    /// Success.
    case success = 0
    /// A runtime failure (the message says which).
    case failure = 1
    /// No subnet meets the budget (the message names the smallest achievable cost).
    case infeasible = 2
    /// Wrong command-line usage (EX_USAGE).
    case usage = 64
    /// Input data is malformed: a bad file, arch or budget (EX_DATAERR).
    case dataError = 65
    /// An input file does not exist or cannot be opened (EX_NOINPUT).
    case noInput = 66
    /// A service is unavailable: daemon not running, socket refused (EX_UNAVAILABLE).
    case unavailable = 69
    /// Try again later: overloaded, deadline exceeded (EX_TEMPFAIL).
    case temporaryFailure = 75
    /// Permission denied (EX_NOPERM).
    case permission = 77
}

/// An error that ends a command with a one-line message and a specific exit status.
public struct CommandError: Error, CustomStringConvertible {
    /// The one-line message printed on stderr.
    public let message: String
    /// The exit status.
    public let code: ExitCode

    /// Creates an error ending with `code`.
    public init(_ message: String, code: ExitCode = .failure) {
        self.message = message
        self.code = code
    }

    /// A usage error: exit 64 with a hint.
    public static func usage(_ message: String, hint: String) -> CommandError {
        CommandError("\(message) (\(hint))", code: .usage)
    }

    /// The message.
    public var description: String { message }
}

/// Parsed command-line arguments: `--name value`, `--name=value`, boolean `--flag`s and positionals.
///
/// Options must be declared up front, so that a misspelled option is a usage error rather than silently
/// ignored.
public struct Arguments {
    /// Positional arguments in order.
    public private(set) var positionals: [String] = []
    private var values: [String: String] = [:]
    private var flags: Set<String> = []
    private let hint: String

    /// Parses `arguments` knowing which names take a value and which are flags.
    /// - Throws: `CommandError` (usage) for an unknown option or a missing value.
    public init(_ arguments: [String], options: Set<String>, flags known: Set<String>, hint: String) throws {
        self.hint = hint
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            i += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                positionals.append(argument)
                continue
            }
            var name = String(argument.dropFirst(2))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if known.contains(name) && inline == nil {
                flags.insert(name)
            } else if options.contains(name) {
                if let inline {
                    values[name] = inline
                } else if i < arguments.count {
                    values[name] = arguments[i]
                    i += 1
                } else {
                    throw CommandError.usage("option --\(name) needs a value", hint: hint)
                }
            } else {
                throw CommandError.usage("unknown option --\(name)", hint: hint)
            }
        }
    }

    /// The value of option `name`, if given.
    public func value(_ name: String) -> String? { values[name] }

    /// Whether flag `name` was given.
    public func flag(_ name: String) -> Bool { flags.contains(name) }

    /// The value of a required option.
    public func required(_ name: String) throws -> String {
        guard let value = values[name] else {
            throw CommandError.usage("missing --\(name)", hint: hint)
        }
        return value
    }

    /// An integer option within `range`, or `fallback` when absent.
    public func integer(_ name: String, default fallback: Int, in range: ClosedRange<Int> = 0...Int.max) throws -> Int {
        guard let text = values[name] else {
            return fallback
        }
        guard let value = Int(text), range.contains(value) else {
            throw CommandError.usage(
                "--\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), "
                    + "got \(text)", hint: hint)
        }
        return value
    }

    /// A floating-point option that must be finite and satisfy `valid`, or `fallback` when absent.
    public func number(
        _ name: String, default fallback: Double?, valid: (Double) -> Bool = { _ in true }
    )
        throws -> Double?
    {
        guard let text = values[name] else {
            return fallback
        }
        guard let value = Double(text), value.isFinite, valid(value) else {
            throw CommandError.usage("--\(name) has an invalid value \(text)", hint: hint)
        }
        return value
    }

    /// Fails when more positionals than `count` were given.
    public func expectPositionals(_ count: Int) throws {
        if positionals.count > count {
            throw CommandError.usage("unexpected argument \(positionals[count])", hint: hint)
        }
    }
}

/// Prints `message` as one line on stderr.
public func printError(_ message: String) {
    var line = message.replacingNewlines() + "\n"
    line.withUTF8 { bytes in
        _ = write(2, bytes.baseAddress, bytes.count)
    }
}

extension String {
    /// The string with line breaks replaced by spaces (one-line error messages).
    func replacingNewlines() -> String {
        String(map { $0 == "\n" ? " " : $0 })
    }
}

/// Runs `body`, printing a `CommandError` (or any error) as one line and exiting with its status.
public func runCommand(_ program: String, _ body: () throws -> Void) -> Never {
    do {
        try body()
        exit(ExitCode.success.rawValue)
    } catch let error as CommandError {
        printError("\(program): \(error.message)")
        exit(error.code.rawValue)
    } catch {
        printError("\(program): \(error)")
        exit(ExitCode.failure.rawValue)
    }
}
