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
