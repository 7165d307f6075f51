// Linux system headers that Glibc's Swift module does not cover: epoll, eventfd, signalfd, the thread id.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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
// CPUAffinity=); 0 if the mask cannot be read.
static inline int supernet_allowed_processor_count(void) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        return 0;
    }
    return CPU_COUNT(&allowed);
}
