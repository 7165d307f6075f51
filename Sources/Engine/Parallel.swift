import CLinux
import COpenBLAS
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs loops on the engine's worker threads.
///
/// Kernels split their work into parts whose results do not depend on how the parts are spread over threads,
/// so every result is bitwise the same for any thread count. Work smaller than a few tens of microseconds runs
/// on the caller's thread. Thread-safe: any thread may call in, also concurrently.
public enum Parallel {
    /// The configured thread count (≥ 1).
    private static let configuredCount = Atomic<Int>(availableProcessorCount)

    /// The processors this process may run on at start (`taskset`, a cgroup's cpuset, systemd's `CPUAffinity=`),
    /// else the online ones: the default thread count. Counting the online ones alone gave two threads on one
    /// allowed processor, where each hand-off waits for a time slice: the smallest subnet at batch 1 ran at half
    /// the speed of one thread.
    public static let availableProcessorCount: Int = {
        let allowed = Int(supernet_allowed_processor_count())
        return allowed > 0 ? allowed : max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }()

    /// Number of threads kernels may use (default: `availableProcessorCount`). Also sets OpenBLAS's.
    ///
    /// Deviation: OpenBLAS itself always stays at one thread; `GEMM` spreads its own fixed blocks over these
    /// threads (see `setThreadCount`).
    public static var threadCount: Int {
        configuredCount.load(ordering: .relaxed)
    }

    /// Sets the number of threads for kernels and for OpenBLAS (1 = everything on the caller's thread).
    ///
    /// Values below 1 count as 1. Deviation: OpenBLAS is kept at one thread (this sets it to 1 again) and `GEMM`
    /// spreads fixed blocks over the engine's threads instead, because OpenBLAS's own threading makes results
    /// depend on the thread count. Thread-safe; kernels already running keep the count they started with.
    public static func setThreadCount(_ count: Int) {
        let clamped = max(1, count)
        configuredCount.store(clamped, ordering: .relaxed)
        _ = GEMM.singleThreadedOpenBLAS
        openblas_set_num_threads(1)
    }

    /// Thread-specific flag: set, the thread's parallel loops run on it alone.
    private static let callerOnlyKey: pthread_key_t = {
        var key = pthread_key_t()
        // Not inside precondition: this module is built with -Ounchecked, which drops the condition unevaluated.
        let status = pthread_key_create(&key, nil)
        if status != 0 { fatalError("pthread_key_create failed: \(status)") }
        return key
    }()

    /// Thread-specific pool position: unset (0) for any calling thread, k for the k-th pool thread.
    static let threadIndexKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        if status != 0 { fatalError("pthread_key_create failed: \(status)") }
        return key
    }()

    /// 0 on a thread that calls into the engine, k on the k-th pool thread.
    static var threadIndex: Int { Int(bitPattern: pthread_getspecific(threadIndexKey)) }

    /// Whether the calling thread runs its loops alone (see `runOnCallerOnly`).
    static var isCallerOnly: Bool { pthread_getspecific(callerOnlyKey) != nil }

    /// Makes every parallel loop the calling thread starts from now on run on that thread alone, never on the
    /// worker threads: for low-priority background work that must not occupy the workers (results are the same,
    /// as for any thread count).
    public static func runOnCallerOnly() {
        _ = pthread_setspecific(callerOnlyKey, UnsafeRawPointer(bitPattern: 1))
    }

    /// Runs `body` with every parallel loop it starts on the calling thread alone, then restores the thread's
    /// previous setting. Results are the same as with the workers (as for any thread count).
    public static func onCallerOnly<R>(_ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(callerOnlyKey)
        _ = pthread_setspecific(callerOnlyKey, UnsafeRawPointer(bitPattern: 1))
        defer {
            _ = pthread_setspecific(callerOnlyKey, previous)
        }
        return try body()
    }

    /// How parallel loops reach the other threads.
    public enum Backend: Int, Sendable {
        /// The engine's own persistent worker threads (spin briefly, then sleep): the default. Measured with
        /// `engine-bench --backend pool|dispatch`: equal at batch 256, about 2× faster for batch-1 kernels
        /// (tens of µs), where Dispatch's wake-up often comes after the caller has done all the work alone.
        case pool
        /// `DispatchQueue.concurrentPerform`.
        case dispatch
    }

    /// The configured backend's raw value.
    private static let configuredBackend = Atomic<Int>(Backend.pool.rawValue)

    /// The mechanism parallel loops use (default `.pool`). Thread-safe.
    public static var backend: Backend {
        get { Backend(rawValue: configuredBackend.load(ordering: .relaxed)) ?? .pool }
        set { configuredBackend.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// Calls `body(i)` for every i in 0..<count, spread over the threads; returns when all are done.
    ///
    /// Indices are handed out one at a time to whichever of `threadCount` threads (the caller's included) is free,
    /// so a thread that starts late (the machine is shared) just takes fewer; with one thread or one index
    /// everything runs on the caller's thread, and so does a call made while the worker pool is busy (from inside
    /// a parallel loop, or from a second thread at the same time). `body` must be safe to call concurrently for
    /// distinct indices, and its results must not depend on which thread runs an index.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        let workers = isCallerOnly ? 1 : min(threadCount, count)
        if workers <= 1 {
            for index in 0..<count {
                body(index)
            }
            return
        }

        switch backend {
        case .pool:
            if !WorkerPool.shared.run(workers: workers, count: count, body) {
                for index in 0..<count {
                    body(index)
                }
            }
        case .dispatch:
            withoutActuallyEscaping(body) { escapable in
                let shared = UncheckedSendable(escapable)
                let counter = Counter()
                DispatchQueue.concurrentPerform(iterations: workers) { _ in
                    while true {
                        let index = counter.next.add(1, ordering: .relaxed).oldValue
                        if index >= count {
                            break
                        }
                        shared.value(index)
                    }
                }
            }
        }
    }

    /// Splits `taskCount` equally expensive tasks into contiguous ranges and calls `body` once per range.
    ///
    /// `cost` is the whole job's work in multiply-adds (or elements for memory-bound kernels): with less than
    /// `2 * minimumCost` (or with one thread) everything runs as one range on the caller's thread, otherwise in at
    /// most `partsPerThread * threadCount` ranges of at least `minimumCost` each, handed out dynamically. Callers
    /// must make their results independent of the split.
    ///
    /// With `affine`, there is one range per thread, and each thread takes the range of its own position when that
    /// range is still free (the caller the first, pool thread k the k + 1-th). Consecutive kernels that cut their
    /// data the same way (image rows, at batch 1) then find their inputs in their own core's cache, instead of
    /// half of them in the other core's (measured at batch 1: two threads were no faster than one).
    static func forRanges(
        _ taskCount: Int, cost: Int, minimumCost: Int, partsPerThread: Int = 4, affine: Bool = false,
        _ body: (Range<Int>) -> Void
    ) {
        guard taskCount > 0 else {
            return
        }

        let parts = min((affine ? 1 : partsPerThread) * threadCount, taskCount, max(1, cost / max(1, minimumCost)))
        if parts <= 1 || threadCount == 1 {
            body(0..<taskCount)
            return
        }

        guard affine, parts <= Int.bitWidth else {
            forEach(parts) { part in
                body(part * taskCount / parts..<(part + 1) * taskCount / parts)
            }
            return
        }
        let claimed = Atomic<Int>(0)
        forEach(parts) { _ in
            // Claim this thread's own range if free, else the first free one (a late thread's share).
            let own = threadIndex % parts
            var part = own
            var mask = claimed.load(ordering: .relaxed)
            while true {
                part = mask & (1 << own) == 0 ? own : (~mask).trailingZeroBitCount
                let (exchanged, current) = claimed.compareExchange(
                    expected: mask, desired: mask | (1 << part), ordering: .relaxed)
                if exchanged {
                    break
                }
                mask = current
            }
            body(part * taskCount / parts..<(part + 1) * taskCount / parts)
        }
    }
}

/// One lent scratch block: 64-byte aligned floats. The pool owns the memory.
private struct ScratchBlock: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int
}

/// Grow-only scratch memory lent to kernels, so hot paths allocate nothing once warmed up.
///
/// Each borrower gets a block of its own (thread-safe through a mutex); blocks go back to the pool after use.
/// Memory is never freed: the pool holds as many blocks as were ever in use at once, each as large as the
/// largest request it served.
enum ScratchPool {
    private static let blocks = Mutex<[ScratchBlock]>([])

    /// Lends at least `count` uninitialized, 64-byte-aligned floats to `body`.
    static func withFloats<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        // Best fit: the smallest idle block that is large enough. Freeing a too-small block to allocate a larger
        // one made interleaved small and large requests re-fault fresh pages on every call (measured: ~10% of
        // a training step in the kernel's page clearing); idle blocks are kept instead, at most 16 of them, and
        // sizes are rounded up to a power of two so that the many sizes of a step (one packed weight matrix per
        // layer, among others) share a few blocks rather than crowd the 16 out.
        let block = blocks.withLock { list -> ScratchBlock? in
            let fitting = list.indices.filter { list[$0].capacity >= count }
            guard let best = fitting.min(by: { list[$0].capacity < list[$1].capacity }) else {
                if list.count >= 16, let smallest = list.indices.min(by: { list[$0].capacity < list[$1].capacity }) {
                    free(list.remove(at: smallest).pointer)
                }
                return nil
            }
            return list.remove(at: best)
        }
        let lent = block ?? allocate(max(1 << (Int.bitWidth - (count - 1).leadingZeroBitCount), 1024))
        defer {
            blocks.withLock { list in
                list.append(lent)
            }
        }
        return body(lent.pointer)
    }

    /// Lends at least `count` uninitialized `SIMD8<Float>` to `body` (32-byte aligned).
    static func withVectors<R>(_ count: Int, _ body: (UnsafeMutablePointer<SIMD8<Float>>) -> R) -> R {
        withFloats(count * 8) { floats in
            body(UnsafeMutableRawPointer(floats).assumingMemoryBound(to: SIMD8<Float>.self))
        }
    }

    private static func allocate(_ count: Int) -> ScratchBlock {
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, count * MemoryLayout<Float>.stride)
        precondition(status == 0 && raw != nil, "scratch allocation of \(count) floats failed")
        return ScratchBlock(pointer: raw!.bindMemory(to: Float.self, capacity: count), capacity: count)
    }
}

/// Hands a value to other threads without a Sendable check: the engine's parallel loops guarantee that
/// concurrent calls touch disjoint memory.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}

/// A shared index counter for the dispatch backend.
private final class Counter: Sendable {
    let next = Atomic<Int>(0)
}

/// Persistent worker threads for `Parallel.forEach`.
///
/// One job at a time. The owner (the calling thread) publishes a closure and an index count, then bumps the job
/// generation; every participant, the owner included, claims indices one at a time with a compare-and-swap on
/// a word holding (generation << 32 | next index), so a pool thread that wakes after the job is over claims
/// nothing and never touches it. The owner returns when all indices are completed. Idle pool threads spin for
/// 100 µs after a job (consecutive kernels then start without a system call), then sleep on a condition
/// variable. A caller that finds the pool busy gets `false` and runs the loop itself. Threads are created on
/// first use and never end.
final class WorkerPool: @unchecked Sendable {
    /// The process-wide pool.
    static let shared = WorkerPool()

    /// Nanoseconds to spin before sleeping.
    private static let spinNanoseconds = 100_000

    /// Spins until `ready()` or `spinNanoseconds` have passed; returns `ready()`'s last value.
    @inline(__always)
    private static func spin(until ready: () -> Bool) -> Bool {
        var deadline = 0
        while true {
            for _ in 0..<256 where ready() {
                return true
            }
            let now = monotonicNanoseconds()
            if deadline == 0 {
                deadline = now + spinNanoseconds
            } else if now >= deadline {
                return ready()
            }
        }
    }

    /// The monotonic clock in nanoseconds.
    private static func monotonicNanoseconds() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return time.tv_sec * 1_000_000_000 + time.tv_nsec
    }

    private let busy = Atomic<Bool>(false)
    /// (generation << 32) | next unclaimed index of the current job.
    private let state = Atomic<Int>(0)
    private let completed = Atomic<Int>(0)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// The current job and its index count; written by the owner before the generation bump, read only by a
    /// participant holding a claimed index (the owner cannot move on before that index completes).
    private var job: ((Int) -> Void)?
    private var count = 0

    /// Pool threads created so far (only the owner changes it).
    private var threads = 0

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
    }

    /// Runs `body(i)` for i in 0..<count on the caller's thread and up to `workers - 1` pool threads; false
    /// (nothing run) if the pool is busy.
    func run(workers: Int, count: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }

        defer {
            busy.store(false, ordering: .releasing)
        }

        while threads < workers - 1 {
            threads += 1
            spawn()
        }

        withoutActuallyEscaping(body) { escapable in
            job = escapable
            self.count = count
            completed.store(0, ordering: .relaxed)
            let generation = (state.load(ordering: .relaxed) >> 32) + 1
            pthread_mutex_lock(mutex)
            state.store(generation << 32, ordering: .releasing)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)

            participate(generation: generation)

            if !Self.spin(until: { completed.load(ordering: .acquiring) == count }) {
                pthread_mutex_lock(mutex)
                while completed.load(ordering: .acquiring) != count {
                    pthread_cond_wait(done, mutex)
                }
                pthread_mutex_unlock(mutex)
            }
            // Close the job: a straggler that read (generation, count) as its state word could otherwise
            // compare that index against the *next* job's larger count, claim it under the old generation and
            // run the next job's closure with a stray index, so that `completed` overshoots and the owner waits
            // forever. An index of 2³² − 1 is beyond every count.
            state.store((generation << 32) | 0xFFFF_FFFF, ordering: .releasing)
            job = nil
        }
        return true
    }

    /// Claims and runs indices of job `generation` until none are left (or the job is no longer current).
    private func participate(generation: Int) {
        while true {
            let word = state.load(ordering: .acquiring)
            let total = count
            let index = word & 0xFFFF_FFFF
            guard word >> 32 == generation, index < total else {
                return
            }

            guard
                state.compareExchange(expected: word, desired: word + 1, ordering: .acquiringAndReleasing)
                    .exchanged
            else {
                continue
            }

            do {
                let current = job
                current?(index)
            }
            if completed.add(1, ordering: .acquiringAndReleasing).newValue == total {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(done)
                pthread_mutex_unlock(mutex)
            }
        }
    }

    /// The loop of a pool thread.
    private func work() {
        var seen = state.load(ordering: .acquiring) >> 32
        while true {
            if !Self.spin(until: { state.load(ordering: .acquiring) >> 32 != seen }) {
                pthread_mutex_lock(mutex)
                while state.load(ordering: .acquiring) >> 32 == seen {
                    pthread_cond_wait(wake, mutex)
                }
                pthread_mutex_unlock(mutex)
            }
            seen = state.load(ordering: .acquiring) >> 32
            participate(generation: seen)
        }
    }

    /// Starts one pool thread.
    private func spawn() {
        let context = Unmanaged.passRetained(ThreadStart(pool: self, index: threads)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(
            &thread, nil,
            { argument in
                let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
                _ = pthread_setspecific(Parallel.threadIndexKey, UnsafeRawPointer(bitPattern: start.index))
                start.pool.work()
                return nil
            }, context)
        precondition(status == 0, "could not start an engine worker thread")
        pthread_detach(thread)
    }
}

/// What a new pool thread needs: its pool and its position (1, 2, …).
private final class ThreadStart {
    let pool: WorkerPool
    let index: Int

    init(pool: WorkerPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
