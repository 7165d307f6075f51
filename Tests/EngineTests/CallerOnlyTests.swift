import Foundation
import Synchronization
import XCTest

@testable import Engine

/// `Parallel.runOnCallerOnly`: the flag is the calling thread's own, and with it set every index of a parallel
/// loop runs on that thread.
final class CallerOnlyTests: XCTestCase {
    /// Runs `body` on a new thread and waits for it.
    private func onNewThread(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            body()
            done.signal()
        }
        thread.start()
        done.wait()
    }

    func testTheFlagBelongsToTheThreadThatSetsIt() {
        let original = Parallel.threadCount
        Parallel.setThreadCount(2)
        defer { Parallel.setThreadCount(original) }
        let results = Mutex<[String: Bool]>([:])
        onNewThread {
            let before = Parallel.isCallerOnly
            Parallel.runOnCallerOnly()
            let after = Parallel.isCallerOnly
            let me = pthread_self()
            let onCaller = Mutex(true)
            Parallel.forEach(64) { _ in
                if pthread_equal(pthread_self(), me) == 0 { onCaller.withLock { $0 = false } }
            }
            results.withLock {
                $0["before"] = before
                $0["after"] = after
                $0["onCaller"] = onCaller.withLock { $0 }
            }
        }
        onNewThread {
            let other = Parallel.isCallerOnly
            results.withLock { $0["other"] = other }
        }
        let seen = results.withLock { $0 }
        XCTAssertEqual(seen["before"], false, "a fresh thread is not caller-only")
        XCTAssertEqual(seen["after"], true)
        XCTAssertEqual(seen["onCaller"], true, "every index ran on the calling thread")
        XCTAssertEqual(seen["other"], false, "another thread is not affected")
        XCTAssertFalse(Parallel.isCallerOnly, "the test's own thread is not affected")
    }
}
