/* log.c: the process log (see log.h).
 * The sink (an fd) is set once before any thread starts and never changes;
 * the level too, but for CONFIG SET loglevel (a relaxed atomic). Each thread keeps
 * its name in a thread-local, and gives it to the OS too (its first 15 bytes,
 * for top -H and /proc/PID/task/TID/comm). A line is built in a stack buffer
 * (truncated at 1 KiB) and written with a single write(), which POSIX keeps
 * whole for regular files opened O_APPEND and pipes, so threads never
 * interleave. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static enum log_level log_max = LOG_INFO;
static _Thread_local char log_thread[24] = "main";

void log_init(int fd, enum log_level level)
{
    log_fd = fd;
    log_max = level;
}

void log_set_level(enum log_level level)
{
    __atomic_store_n(&log_max, level, __ATOMIC_RELAXED);
}

void log_set_thread(const char *name)
{
    snprintf(log_thread, sizeof log_thread, "%s", name);
    char os_name[16]; /* the kernel's limit, with the NUL */
    snprintf(os_name, sizeof os_name, "%s", name);
    pthread_setname_np(pthread_self(), os_name);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (level > __atomic_load_n(&log_max, __ATOMIC_RELAXED))
        return;
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s [%s] ", ts.tv_nsec / 1000000,
                          names[level], log_thread);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, n);
    (void)w;
}
