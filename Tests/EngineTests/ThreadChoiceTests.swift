import Engine
import XCTest

/// `ThreadChoice`: alternates at first, then follows the faster way, keeps sampling the other, and changes its
/// mind when the times change.
final class ThreadChoiceTests: XCTestCase {
    /// Runs `calls` calls, each taking `seconds(all)`; returns the ways taken.
    private func simulate(_ choice: inout ThreadChoice, calls: Int, seconds: (Bool) -> Double) -> [Bool] {
        (0..<calls).map { _ in
            let all = choice.next()
            choice.record(allThreads: all, seconds: seconds(all))
            return all
        }
    }

    func testTheFirstStretchesAlternate() {
        var choice = ThreadChoice()
        let ways = simulate(&choice, calls: 16, seconds: { _ in 1 })
        XCTAssertEqual(ways, [false, true, false, true].flatMap { Array(repeating: $0, count: 4) })
    }

    func testTheFasterWayIsTakenAndTheOtherStillSampled() {
        var twoFaster = ThreadChoice()
        let ways = simulate(&twoFaster, calls: 16 + 2 * 260, seconds: { $0 ? 1e-3 : 2e-3 })
        // After the trials: 256 calls of the faster way, 4 of the other, and again.
        let after = Array(ways.dropFirst(16))
        XCTAssertEqual(after.filter { !$0 }.count, 8)
        XCTAssertTrue(after[0..<256].allSatisfy { $0 })
        XCTAssertEqual(Array(after[256..<260]), [false, false, false, false])

        var oneFaster = ThreadChoice()
        let otherWays = simulate(&oneFaster, calls: 16 + 2 * 260, seconds: { $0 ? 2e-3 : 1e-3 })
        XCTAssertEqual(otherWays.dropFirst(16).filter { $0 }.count, 8)
    }

    /// A stretch's first call is slow (the pool thread wakes up, or the caches are the other core's): it must not
    /// count, or one slow first call of each sample would keep the faster way from being chosen.
    func testTheFirstCallOfAStretchIsNotCounted() {
        var choice = ThreadChoice()
        var previous: Bool?
        let ways = (0..<2000).map { _ -> Bool in
            let all = choice.next()
            let switched = previous != nil && previous != all
            previous = all
            choice.record(allThreads: all, seconds: (all ? 1e-3 : 1.5e-3) * (switched ? 10 : 1))
            return all
        }
        XCTAssertGreaterThan(ways.suffix(1000).filter { $0 }.count, 950)
    }

    func testAChangeOfSpeedChangesTheChoice() {
        var choice = ThreadChoice()
        _ = simulate(&choice, calls: 1000, seconds: { $0 ? 1e-3 : 2e-3 })
        // The cores stop sharing a cache: two threads become slower than one.
        _ = simulate(&choice, calls: 1000, seconds: { $0 ? 3e-3 : 2e-3 })
        let ways = simulate(&choice, calls: 1040, seconds: { $0 ? 3e-3 : 2e-3 })
        XCTAssertEqual(ways.filter { $0 }.count, 16, "only the sampling stretches use both threads")
    }
}
