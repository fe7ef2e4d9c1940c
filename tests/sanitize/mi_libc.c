/* mi_libc.c: mimalloc's API over the C library's allocator, for sanitizer builds.
 * ringkv allocates everything through mimalloc (mi_malloc, mi_free, ...).
 * mimalloc takes its memory from mmap and hands out blocks itself, so
 * AddressSanitizer sees neither overflows nor uses after free inside those
 * blocks, and LeakSanitizer, which only knows the blocks of the malloc it
 * intercepts, can never report a leak of the node's memory. Builds with
 * RINGKV_SANITIZE=ON link this file instead of libmimalloc: every mi_ call
 * the code makes becomes the matching malloc call, so ASan guards each
 * block and LSan checks at exit that every one was freed.
 * Sizes are rounded up to a multiple of 16, as mimalloc's small size
 * classes are, and mi_usable_size() reports the rounded size, so code that
 * relies on usable sizes being multiples of 8 (table.c keeps a log position
 * in an entry's last 8 bytes) behaves as with mimalloc. Only the functions
 * ringkv calls are here; a new one fails the sanitizer build's link, which
 * says to add it. */
#include <errno.h>
#include <malloc.h>
#include <mimalloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MI_LIBC_GRAIN 16

static size_t mi_libc_round(size_t size)
{
    if (size == 0)
        return MI_LIBC_GRAIN;
    if (size > SIZE_MAX - (MI_LIBC_GRAIN - 1))
        return SIZE_MAX; /* malloc refuses it, as mimalloc would */
    return (size + MI_LIBC_GRAIN - 1) & ~(size_t)(MI_LIBC_GRAIN - 1);
}

void *mi_malloc(size_t size)
{
    return malloc(mi_libc_round(size));
}

void *mi_zalloc(size_t size)
{
    return calloc(1, mi_libc_round(size));
}

void *mi_calloc(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return calloc(1, mi_libc_round(total));
}

void *mi_realloc(void *p, size_t newsize)
{
    return realloc(p, mi_libc_round(newsize));
}

void mi_free(void *p)
{
    free(p);
}

void *mi_malloc_aligned(size_t size, size_t alignment)
{
    void *p = NULL;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    return posix_memalign(&p, alignment, mi_libc_round(size)) == 0 ? p : NULL;
}

void *mi_zalloc_aligned(size_t size, size_t alignment)
{
    void *p = mi_malloc_aligned(size, alignment);
    if (p)
        memset(p, 0, mi_libc_round(size));
    return p;
}

size_t mi_usable_size(const void *p)
{
    return p ? malloc_usable_size((void *)p) : 0;
}

size_t mi_good_size(size_t size)
{
    return mi_libc_round(size);
}

int mi_version(void)
{
    return MI_MALLOC_VERSION;
}

/* The allocator's own figures (INFO memory's allocator_*) are not known
 * here: zeros. */
void mi_process_info(size_t *elapsed_msecs, size_t *user_msecs, size_t *system_msecs,
                     size_t *current_rss, size_t *peak_rss, size_t *current_commit,
                     size_t *peak_commit, size_t *page_faults)
{
    size_t *out[] = {elapsed_msecs, user_msecs,     system_msecs, current_rss,
                     peak_rss,      current_commit, peak_commit,  page_faults};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        if (out[i])
            *out[i] = 0;
}
