import COpenBLAS

#if canImport(Glibc)
import Glibc
#endif

/// Which OpenBLAS kernel set this process runs, and the re-start that picks the right one.
///
/// Debian's OpenBLAS chooses its kernels once, while it loads (before `main`), from the processor or from the
/// `OPENBLAS_CORETYPE` variable. On these machines' newer Xeons it falls back to its SSE3 ("Prescott") kernels
/// when the variable is unset: measured with `supernet bench engine --threads 1 --only largest_infer_b1`, 346
/// images/s with them against 507 with the Haswell (AVX2) kernels. The engine's own kernels need AVX2 anyway.
public enum OpenBLASCore {
    /// The variable OpenBLAS reads.
    static let variable = "OPENBLAS_CORETYPE"

    /// The kernel set OpenBLAS loaded (e.g. "Haswell", "Prescott").
    public static var name: String {
        guard let core = openblas_get_corename() else {
            return "unknown"
        }
        return String(cString: core)
    }

    /// Re-executes the process with `OPENBLAS_CORETYPE=Haswell` when the variable is unset and the processor has
    /// AVX2 and FMA; returns (doing nothing) otherwise, or when the re-exec fails. Call first thing in `main`,
    /// before any thread or file descriptor is created: the process keeps its pid, arguments, environment and
    /// open descriptors (socket activation and `NOTIFY_SOCKET` still work).
    public static func ensureHaswellKernels() {
        guard getenv(variable) == nil, processorHasAVX2 else {
            return
        }
        setenv(variable, "Haswell", 1)
        let arguments = CommandLine.unsafeArgv
        execv("/proc/self/exe", arguments)
        // Still here: exec failed; run on with the kernels already loaded.
    }

    /// Whether /proc/cpuinfo lists both avx2 and fma.
    private static var processorHasAVX2: Bool {
        guard let file = fopen("/proc/cpuinfo", "r") else {
            return false
        }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let text = String(cString: line!)
            if text.hasPrefix("flags") {
                let flags = Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }))
                return flags.contains("avx2") && flags.contains("fma")
            }
        }
        return false
    }
}
