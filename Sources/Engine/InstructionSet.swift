import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Which vector instructions the engine's own kernels use: AVX2 always (the module is compiled for it), AVX-512
/// where the processor has it (the pointwise and depthwise inference kernels, in `EngineAVX512`).
///
/// Both paths compute every output with the same operations in the same order, so results are bitwise equal
/// whichever runs (checked by the tests, which force each).
public enum InstructionSet {
    /// The processor's feature flags, as /proc/cpuinfo lists them (empty when it cannot be read).
    static let processorFlags: Set<Substring> = {
        guard let file = fopen("/proc/cpuinfo", "r") else {
            return []
        }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let text = String(cString: line!)
            if text.hasPrefix("flags") {
                return Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }))
            }
        }
        return []
    }()

    /// Whether the processor runs AVX-512 F, CD, BW, DQ and VL (`EngineAVX512` is compiled for Skylake-AVX512,
    /// which has these five).
    public static let avx512Available: Bool = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy {
        processorFlags.contains(Substring($0))
    }

    private static let enabled = Atomic<Bool>(avx512Available && getenv("SUPERNET_NO_AVX512") == nil)

    /// Whether the kernels use AVX-512 now: by default where available, unless `SUPERNET_NO_AVX512` is set.
    /// Setting it true on a processor without AVX-512 has no effect. Thread-safe; kernels already running keep
    /// the path they started on.
    public static var useAVX512: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue && avx512Available, ordering: .relaxed) }
    }

    /// "avx512" or "avx2": the path the kernels take now.
    public static var name: String { useAVX512 ? "avx512" : "avx2" }
}
