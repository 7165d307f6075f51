// Linux system headers that Glibc's Swift module does not cover: epoll, eventfd, signalfd, the thread id.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

// The calling thread's id (glibc's gettid() is not visible to Swift): per-thread priorities need it.
static inline pid_t supernet_thread_id(void) { return (pid_t)syscall(SYS_gettid); }

// Moves the calling thread to SCHED_IDLE (it runs only when no normal thread wants the CPU); 0 on success.
#include <sched.h>
#ifndef SCHED_IDLE
#define SCHED_IDLE 5
#endif
static inline int supernet_thread_idle_policy(void) {
    struct sched_param parameter = {0};
    return sched_setscheduler(0, SCHED_IDLE, &parameter);
}

// How many processors the calling thread may run on (its affinity mask: taskset, a cpuset, systemd's
// CPUAffinity=); 0 if the mask cannot be read. The raw system call, because glibc declares sched_getaffinity and
// CPU_COUNT only under _GNU_SOURCE, which would make this module's view of the system headers differ from the
// other modules' (a clean build then fails on conflicting definitions).
static inline int supernet_allowed_processor_count(void) {
    unsigned long mask[16] = {0};
    long bytes = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    if (bytes <= 0) {
        return 0;
    }
    int count = 0;
    for (long word = 0; word < bytes / (long)sizeof mask[0]; word++) {
        count += __builtin_popcountl(mask[word]);
    }
    return count;
}
