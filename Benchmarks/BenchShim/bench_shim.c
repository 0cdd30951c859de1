#include <pthread.h>
#include "BenchShim.h"

int shmipc_pthread_mutex_init_shared(void *mutex, int recursive) {
    pthread_mutexattr_t attributes;
    int code = pthread_mutexattr_init(&attributes);
    if (code != 0) return code;
    code = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (code == 0 && recursive) code = pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
    if (code == 0) code = pthread_mutex_init((pthread_mutex_t *)mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return code;
}

size_t shmipc_pthread_mutex_size(void) { return sizeof(pthread_mutex_t); }
