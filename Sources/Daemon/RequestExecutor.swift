import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Seconds from the monotonic clock.
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// A fixed set of worker threads running queued jobs, with a bounded queue: `submit` refuses work when the
/// queue is full (the server answers `overloaded`) rather than letting it grow without limit.
final class RequestExecutor: @unchecked Sendable {
    // @unchecked: all mutable state is inside `state`'s mutex; the condition variable pairs with `lock`.
    private struct State {
        var jobs: [() -> Void] = []
        var head = 0
        var running = 0
        var stopping = false
    }

    private let state = Mutex(State())
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let available = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let idle = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    let capacity: Int
    let threads: Int

    /// Starts `threads` workers; at most `capacity` jobs may wait.
    init(threads: Int, capacity: Int) {
        self.threads = max(1, threads)
        self.capacity = capacity
        pthread_mutex_init(lock, nil)
        pthread_cond_init(available, nil)
        pthread_cond_init(idle, nil)
        for _ in 0..<self.threads {
            spawn()
        }
    }

    /// Queues `job`; false (not queued) when the queue is full or the executor is stopping.
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        let accepted = state.withLock { s -> Bool in
            guard !s.stopping, s.jobs.count - s.head < capacity else { return false }
            s.jobs.append(job)
            return true
        }
        if accepted {
            pthread_cond_signal(available)
        }
        return accepted
    }

    /// Jobs queued or running.
    var pending: Int {
        state.withLock { $0.jobs.count - $0.head + $0.running }
    }

    /// Blocks until no job is queued or running, or `timeout` seconds pass; returns whether it drained.
    func drain(timeout: Double) -> Bool {
        let deadline = monotonicSeconds() + timeout
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        while pending > 0 {
            let remaining = deadline - monotonicSeconds()
            if remaining <= 0 { return false }
            var until = timespec()
            clock_gettime(CLOCK_REALTIME, &until)
            let nanos = Int(until.tv_nsec) + Int(min(remaining, 0.1) * 1e9)
            until.tv_sec += nanos / 1_000_000_000
            until.tv_nsec = nanos % 1_000_000_000
            pthread_cond_timedwait(idle, lock, &until)
        }
        return true
    }

    private func spawn() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(
            &thread, nil,
            { argument in
                Unmanaged<RequestExecutor>.fromOpaque(argument!).takeRetainedValue().work()
                return nil
            }, context)
        precondition(status == 0, "could not start a request worker thread")
        pthread_detach(thread)
    }

    private func work() {
        while true {
            pthread_mutex_lock(lock)
            var job: (() -> Void)?
            while job == nil {
                job = state.withLock { s -> (() -> Void)? in
                    guard s.head < s.jobs.count else { return nil }
                    let next = s.jobs[s.head]
                    s.head += 1
                    if s.head > 1024 && s.head * 2 > s.jobs.count {
                        s.jobs.removeFirst(s.head)
                        s.head = 0
                    }
                    s.running += 1
                    return next
                }
                if job == nil {
                    pthread_cond_wait(available, lock)
                }
            }
            pthread_mutex_unlock(lock)

            job!()

            pthread_mutex_lock(lock)
            state.withLock { $0.running -= 1 }
            pthread_cond_broadcast(idle)
            pthread_mutex_unlock(lock)
        }
    }
}
