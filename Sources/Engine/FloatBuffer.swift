/// A fixed-size, zero-initialized, 64-byte-aligned float32 buffer owned by a class instance.
///
/// The engine's kernels take raw pointers; this is what owns the memory behind them. Not thread-safe:
/// one owner mutates it at a time (kernels may split one call's work over threads internally).
public final class FloatBuffer {
    /// Number of floats.
    public let count: Int
    /// The first float; valid for `count` floats while the buffer lives.
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` floats set to zero.
    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer needs a non-negative count")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        pointer.deallocate()
    }

    /// Sets the first `count` floats (all by default) to zero.
    public func zero(_ count: Int? = nil) {
        pointer.update(repeating: 0, count: count ?? self.count)
    }

    /// A copy of the first `count` floats (all by default).
    public func array(_ count: Int? = nil) -> [Float] {
        Array(UnsafeBufferPointer(start: pointer, count: count ?? self.count))
    }

    /// Element access, for tests and cold paths.
    public subscript(index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }
}

/// A buffer that grows (never shrinks) to the largest size asked of it; contents are not preserved.
public final class GrowableBuffer {
    private var storage = FloatBuffer(count: 0)

    /// Creates an empty buffer.
    public init() {}

    /// A pointer to at least `count` floats (zeroed when newly grown).
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if storage.count < count {
            storage = FloatBuffer(count: count)
        }
        return storage.pointer
    }
}
