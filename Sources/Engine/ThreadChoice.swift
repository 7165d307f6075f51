/// Chooses, call by call, whether work too small to keep two cores busy without talking (one image through a
/// network) runs on all the engine's threads or on the caller's alone, from the times of both.
///
/// On these virtual machines the two vCPUs sometimes share a cache and sometimes not, changing from hour to hour;
/// batch-1 inference, which hands data between the cores at every layer, ran at 2,500 images/s on two threads in
/// the first case but at 1,390 in the second, where one thread alone gives 1,650. So the choice is measured, not
/// fixed. Calls go in stretches of one way: first `trialStretches` short stretches alternating, then a long
/// stretch of the faster way (by moving averages) and a short one of the other, to notice a change. The first
/// call of a stretch is not timed: after the other way it pays for waking the idle pool thread or for data left in
/// the other core's cache, which once made the slower way look right for good. Results do not depend on the
/// choice (the engine gives the same bits for any thread count). Not thread-safe: callers serialize.
public struct ThreadChoice: Sendable {
    /// Alternating short stretches before the averages are trusted.
    static let trialStretches = 4
    /// Calls in a short stretch (trials and samples of the way not preferred).
    static let shortStretch = 4
    /// Calls in a stretch of the preferred way.
    static let longStretch = 256
    /// Weight of the newest time in a moving average.
    static let smoothing = 0.25

    /// Moving averages of a call's seconds: [caller only, all threads]; nil until timed.
    private var average: [Double?] = [nil, nil]
    /// The current stretch: its way, the calls left in it, and whether the next call is its first.
    private var allThreads = true
    private var remaining = 0
    private var first = false
    private var stretches = 0
    private var sampling = true

    public init() {}

    /// Whether the next call should use all threads.
    public mutating func next() -> Bool {
        if remaining == 0 {
            stretches += 1
            if stretches <= Self.trialStretches {
                allThreads = stretches % 2 == 0
                remaining = Self.shortStretch
            } else {
                let preferAll = (average[1] ?? 0) <= (average[0] ?? .infinity)
                sampling.toggle()
                allThreads = sampling ? !preferAll : preferAll
                remaining = sampling ? Self.shortStretch : Self.longStretch
            }
            first = true
        }
        remaining -= 1
        return allThreads
    }

    /// Records a call's duration for the way it took (the first call of a stretch is left out).
    public mutating func record(allThreads all: Bool, seconds: Double) {
        if first {
            first = false
            return
        }
        let slot = all ? 1 : 0
        average[slot] = average[slot].map { $0 + Self.smoothing * (seconds - $0) } ?? seconds
    }
}
