/* dirlock.c: the lock that keeps a data directory to one process (see
 * dirlock.h).
 * flock() rather than a POSIX record lock (fcntl F_SETLK): an flock belongs
 * to the open file description, so only closing that descriptor (or the
 * process ending) releases it, whereas a record lock goes with the first
 * close of any descriptor of the file anywhere in the process.
 * The pid is written once the lock is held: the file is truncated, then
 * "<pid>\n" written at its start. A process refused the lock reads it for its
 * message; one that looks between the holder's flock and its write reads
 * nothing and reports pid 0. Writing is best effort: on a full disk the lock
 * holds all the same, only the refused process cannot name the holder. The
 * file stays when the holder exits, with a stale pid that nobody reads,
 * since the next dirlock_take() gets the lock. */
#include "dirlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#define DIRLOCK_PID_MAX 24 /* "<pid>\n" as written, with room to spare */

/* Writes this process's pid into the locked file. True when all of it went. */
static bool dirlock_write_pid(int fd)
{
    char text[DIRLOCK_PID_MAX];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    return ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)len, 0) == len;
}

/* The pid in the file, or 0 when it holds none (not written yet). */
static pid_t dirlock_read_pid(int fd)
{
    char text[DIRLOCK_PID_MAX];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *end;
    long pid = strtol(text, &end, 10);
    return end != text && *end == '\n' && pid > 0 && pid <= INT_MAX ? (pid_t)pid : 0;
}

int dirlock_take(const char *dir, int *fd, pid_t *holder)
{
    *fd = -1;
    *holder = 0;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, DIRLOCK_FILE) >= (int)sizeof path)
        return -ENAMETOOLONG;
    int lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0)
        return -errno;
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err == EWOULDBLOCK)
            *holder = dirlock_read_pid(lock_fd);
        close(lock_fd);
        return -err;
    }
    dirlock_write_pid(lock_fd); /* best effort (above) */
    *fd = lock_fd;
    return 0;
}
