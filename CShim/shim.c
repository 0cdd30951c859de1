// Out-of-line wrappers: _GNU_SOURCE is required for sched_setaffinity, CPU_SET, memfd_create
// and F_ADD_SEALS, and defining it in a header Swift imports conflicts with the Glibc module.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <spawn.h>
#include "CShim.h"

int shmipc_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

int shmipc_unpin_current_thread(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    for (long cpu = 0; cpu < online && cpu < CPU_SETSIZE; cpu++) CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

int shmipc_allowed_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int shmipc_memfd_create(const char *name, unsigned int flags) {
    return memfd_create(name, flags);
}

int shmipc_memfd_seal_size(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

unsigned int shmipc_memfd_default_flags(void) {
    return MFD_CLOEXEC | MFD_ALLOW_SEALING;
}

int shmipc_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int shmipc_pipe_cloexec(int fds[2], int nonblocking_read_end) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    if (nonblocking_read_end && fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

// The thread id cache: gettid is a syscall; the owner mark of every lock operation needs it.
__thread int32_t shmipc_cached_thread_id __attribute__((tls_model("initial-exec")));
__thread shmipc_intent_cache_line shmipc_intent_cache[SHMIPC_INTENT_CACHE_LINES] __attribute__((tls_model("initial-exec")));
__thread const shmipc_queue_intent *shmipc_intent_last_table __attribute__((tls_model("initial-exec")));
__thread shmipc_queue_intent *shmipc_intent_last_entry __attribute__((tls_model("initial-exec")));
static pthread_once_t shmipc_atfork_once = PTHREAD_ONCE_INIT;
static void shmipc_forget_tid(void) { shmipc_cached_thread_id = 0; }  // fork child: new thread id
static void shmipc_register_atfork(void) { pthread_atfork(NULL, NULL, shmipc_forget_tid); }

int32_t shmipc_thread_id_slow(void) {
    pthread_once(&shmipc_atfork_once, shmipc_register_atfork);
    int32_t tid = (int32_t)syscall(SYS_gettid);
    shmipc_cached_thread_id = tid;
    return tid;
}

// The pthread reference for shm-bench: kept in C so the mutex type and attribute constants
// (enums and macros in glibc) need no Swift spelling.
// Processes. Plain C: the lifeline thread must not touch the Swift runtime (it can run while
// the process is being torn down), and /proc parsing is simplest here.
int shmipc_thread_count(void) {
    char buffer[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t length = read(fd, buffer, sizeof(buffer) - 1);
    close(fd);
    if (length <= 0) return -1;
    buffer[length] = 0;
    // Field 2 (comm) is in parentheses and may hold spaces: count fields after its last ')'.
    char *cursor = strrchr(buffer, ')');
    if (cursor == NULL) return -1;
    // After ')': field 3 (state) ... field 20 (num_threads), 18 spaces on.
    for (int field = 2; field < 20; field++) {
        cursor = strchr(cursor + 1, ' ');
        if (cursor == NULL) return -1;
    }
    return atoi(cursor + 1);
}

static void *shmipc_lifeline_main(void *context) {
    int fd = (int)(intptr_t)context;
    char byte;
    for (;;) {
        ssize_t result = read(fd, &byte, 1);
        if (result < 0 && errno == EINTR) continue;
        if (result > 0) continue;  // nobody writes; ignore
        break;  // EOF (or an error): every write end is closed, so the parent is gone
    }
    kill(getpid(), SIGKILL);
    return NULL;
}

int shmipc_start_lifeline_watcher(int fd) {
    pthread_attr_t attributes;
    int code = pthread_attr_init(&attributes);
    if (code != 0) return code;
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    // The watcher must not take the process's signals: block them all in it.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_t thread;
    code = pthread_create(&thread, &attributes, shmipc_lifeline_main, (void *)(intptr_t)fd);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attributes);
    return code;
}

// Descriptor passing for the fork server: CMSG_* are macros Swift cannot import.
int shmipc_seqpacket_pair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
}

#define SHMIPC_MAX_PASSED_FDS 64

long shmipc_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count) {
    if (count < 0 || count > SHMIPC_MAX_PASSED_FDS) { errno = EINVAL; return -1; }
    struct iovec vector = { .iov_base = (void *)bytes, .iov_len = length };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int) * SHMIPC_MAX_PASSED_FDS)]; } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1 };
    if (count > 0) {
        message.msg_control = control.space;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)count);
    }
    return (long)sendmsg(socket, &message, MSG_NOSIGNAL);
}

long shmipc_receive_with_fds(int socket, void *bytes, size_t capacity, int *fds, int max_fds, int *count) {
    struct iovec vector = { .iov_base = bytes, .iov_len = capacity };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int) * SHMIPC_MAX_PASSED_FDS)]; } control;
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof(control.space) };
    *count = 0;
    ssize_t received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (received < 0) return -1;
    int truncated = (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *passed = (int *)CMSG_DATA(header);
        for (int i = 0; i < n; i++) {
            if (*count < max_fds && !truncated) fds[(*count)++] = passed[i]; else close(passed[i]);
        }
    }
    if (truncated) {
        for (int i = 0; i < *count; i++) close(fds[i]);
        *count = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return (long)received;
}

int shmipc_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
