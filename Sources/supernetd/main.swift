import CommandLineSupport
import Daemon
import Engine
import SystemdSupport

#if canImport(Glibc)
import Glibc
#endif

// Before anything else: OpenBLAS picks its kernels while loading (see OpenBLASCore).
OpenBLASCore.ensureHaswellKernels()

let version = "0.1.0"
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("--help") || arguments.contains("-h") {
    print(DaemonConfiguration.usage)
    exit(0)
}
if arguments.contains("--version") {
    print("supernetd \(version)")
    exit(0)
}

let configuration: DaemonConfiguration
do {
    configuration = try DaemonConfiguration.load(arguments: arguments)
} catch {
    printError("supernetd: \(error)")
    exit(ExitCode.usage.rawValue)
}

let logger = ServiceLogger(identifier: "supernetd")
do {
    let runner = DaemonRunner(configuration: configuration, logger: logger, version: version)
    exit(try runner.run(makeCatalog: PluginCatalogHost.make))
} catch {
    logger.error("cannot start", ["reason": "\(error)"])
    exit(ExitCode.failure.rawValue)
}
