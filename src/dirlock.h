/* dirlock.h: one process per data directory.
 * dirlock_take() opens (creating it) <dir>/LOCK, takes an exclusive flock()
 * on it without waiting, and writes the caller's pid into it, so that a
 * second process can say who holds the directory. The lock belongs to the
 * open file: it lasts as long as the descriptor, which the caller keeps open
 * for its life (close-on-exec, so no child inherits it), and the kernel drops
 * it when the process ends however it ends (SIGKILL included): a LOCK file
 * left behind never stops a restart, only a live holder does.
 * Threads: any; ringkv calls it once, on the main thread at start-up.
 * Errors: -EWOULDBLOCK when another process holds the lock; other -errno
 *   from open() or flock(). Nothing is logged here. */
#ifndef RINGKV_SRC_DIRLOCK_H
#define RINGKV_SRC_DIRLOCK_H

#include <sys/types.h>

#define DIRLOCK_FILE "LOCK"

/* Locks dir (an existing directory). 0 with *fd the locked descriptor (the
 * caller's; closing it releases the lock). -EWOULDBLOCK with *holder the pid
 * written by the process that holds it (0 when it has not written one yet);
 * other -errno on failure. *fd is -1 unless 0 is returned. */
int dirlock_take(const char *dir, int *fd, pid_t *holder);

#endif
