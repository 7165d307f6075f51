// Linux system headers that Glibc's Swift module does not cover: epoll, eventfd, signalfd.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <signal.h>
