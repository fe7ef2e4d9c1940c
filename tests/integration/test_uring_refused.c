/* test_uring_refused.c: when the kernel or a container refuses io_uring, the
 * node says why and what to change in one line, and exits non-zero.
 * A child process installs a seccomp filter that makes io_uring_setup fail
 * with a chosen errno (as a container's default profile does with EPERM, or
 * an old kernel with ENOSYS), then execs ringkv; the test reads its output. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* Runs ringkv (which checks io_uring before it binds, so the port is never
 * opened) with io_uring_setup failing with `err`; returns its exit status
 * and its output in out. */
static int run_refused(int err, char *out, size_t out_len)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            _exit(77);
        const char *bin = getenv("RINGKV_BIN");
        execl(bin, bin, "--port", "1", "--memcache-port", "0", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < out_len && (r = read(fds[0], out + n, out_len - n - 1)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_uring_refused_eperm_says_how_to_fix(void **state)
{
    char out[4096];
    int rc = run_refused(EPERM, out, sizeof out);
    if (rc == 77)
        skip();
    print_message("%s", out);
    assert_int_not_equal(rc, 0);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "io_uring is refused (EPERM)"));
    assert_non_null(strstr(out, "kernel.io_uring_disabled=0"));
    assert_non_null(strstr(out, "seccomp"));
}

static void test_uring_refused_enosys_names_the_kernel(void **state)
{
    char out[4096];
    int rc = run_refused(ENOSYS, out, sizeof out);
    if (rc == 77)
        skip();
    print_message("%s", out);
    assert_int_not_equal(rc, 0);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "io_uring is not available (ENOSYS)"));
    assert_non_null(strstr(out, "Linux"));
}

static void test_uring_refused_enomem_names_memlock(void **state)
{
    char out[4096];
    int rc = run_refused(ENOMEM, out, sizeof out);
    if (rc == 77)
        skip();
    print_message("%s", out);
    assert_int_not_equal(rc, 0);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "ulimit -l"));
}

int main(void)
{
    if (!getenv("RINGKV_BIN") || getenv("RINGKV_TEST_TARGET"))
        return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uring_refused_eperm_says_how_to_fix),
        cmocka_unit_test(test_uring_refused_enosys_names_the_kernel),
        cmocka_unit_test(test_uring_refused_enomem_names_memlock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
