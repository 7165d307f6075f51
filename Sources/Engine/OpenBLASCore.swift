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
    /// The variables OpenBLAS reads while it loads: its kernel set and its thread count.
    static let coreTypeVariable = "OPENBLAS_CORETYPE"
    static let threadsVariable = "OPENBLAS_NUM_THREADS"

    /// The kernel set OpenBLAS loaded (e.g. "Haswell", "Prescott").
    public static var name: String {
        guard let core = openblas_get_corename() else {
            return "unknown"
        }
        return String(cString: core)
    }

    /// Re-executes the process with `OPENBLAS_CORETYPE=Haswell` (when unset and the processor has AVX2 and FMA) and
    /// `OPENBLAS_NUM_THREADS=1` (when unset) if either was missing; returns, doing nothing, when both are set or the
    /// re-exec fails. Call first thing in `main`, before any thread or file descriptor is created: the process keeps
    /// its pid, arguments, environment and open descriptors (socket activation and `NOTIFY_SOCKET` still work).
    ///
    /// One thread for OpenBLAS: the engine runs OpenBLAS single-threaded anyway (see `GEMM`), and without the
    /// variable OpenBLAS starts its own pool at load, whose idle thread was seen spinning in `sched_yield` (5% of
    /// the samples of a batch-1 inference profile), taking time from the engine's second thread.
    public static func ensureHaswellKernels() {
        var changed = false
        if getenv(coreTypeVariable) == nil, processorHasAVX2 {
            setenv(coreTypeVariable, "Haswell", 1)
            changed = true
        }
        if getenv(threadsVariable) == nil {
            setenv(threadsVariable, "1", 1)
            changed = true
        }
        guard changed else {
            return
        }
        // The executable's own path, not /proc/self/exe: the process is named after the file it executes, and
        // ps, top and the journal should go on saying supernetd, not exe.
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &path, Int(PATH_MAX))
        guard length > 0 else {
            return
        }
        execv(path, CommandLine.unsafeArgv)
        // Still here: exec failed; run on with the kernels already loaded.
    }

    /// Whether the processor has AVX2 and FMA.
    private static var processorHasAVX2: Bool {
        InstructionSet.processorFlags.contains("avx2") && InstructionSet.processorFlags.contains("fma")
    }
}
