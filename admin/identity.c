/* identity.c: the node id file (see identity.h).
 * The file holds the id and a newline. A new one is written under a
 * temporary name, fsynced, renamed over node-id and the directory fsynced,
 * so that a crash leaves either no id (the next start makes one, nothing
 * has seen the first) or the whole id, never half of one. An existing file
 * that does not hold an id is an error rather than silently replaced: a
 * node that took a new id would join its cluster as a stranger. */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

bool identity_valid(const char *s, size_t len)
{
    if (len != IDENTITY_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int identity_random(char id[IDENTITY_LEN + 1])
{
    unsigned char rnd[IDENTITY_LEN / 2];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t r = getrandom(rnd + got, sizeof rnd - got, 0);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0)
            got += (size_t)r;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    return 0;
}

/* 0 with the id read, -ENOENT when there is no file, other -errno. */
static int identity_read(const char *path, char id[IDENTITY_LEN + 1])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[IDENTITY_LEN + 2];
    ssize_t n = read(fd, buf, sizeof buf);
    int err = n < 0 ? -errno : 0;
    close(fd);
    if (err)
        return err;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (!identity_valid(buf, (size_t)n))
        return -EINVAL;
    memcpy(id, buf, IDENTITY_LEN);
    id[IDENTITY_LEN] = '\0';
    return 0;
}

static int identity_fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int identity_write(const char *dir, const char *path, const char id[IDENTITY_LEN + 1])
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    char line[IDENTITY_LEN + 1];
    memcpy(line, id, IDENTITY_LEN);
    line[IDENTITY_LEN] = '\n';
    int rc = 0;
    if (write(fd, line, sizeof line) != (ssize_t)sizeof line)
        rc = errno ? -errno : -EIO;
    else if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return identity_fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

int identity_load(const char *dir, char id[IDENTITY_LEN + 1], bool *created)
{
    char path[4096];
    *created = false;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, IDENTITY_FILE) >= sizeof path)
        return -ENAMETOOLONG;
    int rc = identity_read(path, id);
    if (rc != -ENOENT)
        return rc;
    if ((rc = identity_random(id)) != 0)
        return rc;
    if ((rc = identity_write(dir, path, id)) != 0)
        return rc;
    *created = true;
    return 0;
}
