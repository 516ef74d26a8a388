// Linux headers that `import Glibc` does not expose on this toolchain.
#ifndef CRM_CLINUX_SHIM_H
#define CRM_CLINUX_SHIM_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <errno.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/prctl.h>
#include <spawn.h>
#include <malloc.h>

/* accept4 is a GNU extension that the Glibc module does not declare without _GNU_SOURCE. */
/* prctl is variadic, which Swift cannot call. */
static inline int crm_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}

/* SCHED_BATCH is declared for _GNU_SOURCE only. Sets the calling thread's policy; the threads
   it creates afterwards inherit it (glibc's default PTHREAD_INHERIT_SCHED). */
#include <sched.h>
static inline int crm_sched_batch(void) {
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, 3 /* SCHED_BATCH */, &param);
}

extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
/* glibc 2.34 and later, declared for _GNU_SOURCE only: the launcher closes every other descriptor in a child. */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
#endif
