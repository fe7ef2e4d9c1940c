/* test_start_failure.c: a shard thread that cannot be created stops the start.
 * When pthread_create fails for shard k, the threads of shards 0..k-1 are
 * already running; the node must stop and join them before it frees
 * anything, then say why in one line and exit 1: no crash, no hang, no
 * sanitizer report (run in the sanitizer build, where a use after free or a
 * leak on that path is reported and fails the test).
 * The failure comes from the node's fault hook (RINGKV_TEST_FAIL_THREAD=k,
 * compiled in with RINGKV_TEST_HOOKS, as in the sanitizer build); a build
 * without it skips. A thread limit cannot do this for us: root ignores
 * RLIMIT_NPROC, and the limit counts every process of the user. */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS "4"

struct start_run {
    pid_t pid;
    int status;
};

static bool start_run_exited(void *arg)
{
    struct start_run *r = arg;
    return waitpid(r->pid, &r->status, WNOHANG) == r->pid;
}

/* Runs ringkv with shard `fail_thread`'s pthread_create failing, its output
 * in out; returns its wait status. A node still running after
 * HARNESS_TIMEOUT_MS (a shard left waiting for the others) is killed and
 * fails the test. */
static int run_failing_start(const char *fail_thread, const char *storage, char *out, size_t cap)
{
    char dir[] = "/tmp/ringkv-start-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char log[sizeof dir + 8];
    snprintf(log, sizeof log, "%s/log", dir);
    /* the cluster port too, free a moment ago: its default (port + 10000)
     * may be another test's (a start that fails there never reaches the
     * shard threads); no admin API */
    int port, cluster_port;
    assert_int_equal(harness_free_ports(&port, &cluster_port), 0);
    char port_s[16], cluster_port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(cluster_port_s, sizeof cluster_port_s, "%d", cluster_port);
    struct start_run r = {.pid = fork()};
    assert_true(r.pid >= 0);
    if (r.pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || chdir(dir) != 0)
            _exit(126);
        setenv("RINGKV_TEST_FAIL_THREAD", fail_thread, 1);
        const char *bin = getenv("RINGKV_BIN");
        execl(bin, bin, "--port", port_s, "--memcache-port", "0", "--cluster-port",
              cluster_port_s, "--admin-port", "0", "--bind", "127.0.0.1", "--threads", THREADS,
              "--storage", storage, "--dir", dir, (char *)NULL);
        _exit(127);
    }
    if (!harness_wait_until(start_run_exited, &r, HARNESS_TIMEOUT_MS, 10)) {
        kill(r.pid, SIGKILL);
        waitpid(r.pid, &r.status, 0);
        fail_msg("ringkv still running %d ms after shard %s failed to start", HARNESS_TIMEOUT_MS,
                 fail_thread);
    }
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    print_message("%s", out);
    return r.status;
}

/* True when every line of out is one of ringkv's log lines ("2026-..."):
 * no sanitizer report, not even the first line of one cut short by exit. */
static bool only_log_lines(const char *out)
{
    for (const char *line = out; *line;) {
        const char *eol = strchr(line, '\n');
        if (!eol || eol - line < 11)
            return false; /* cut short, or not a log line */
        if (!(line[0] >= '0' && line[0] <= '9' && line[4] == '-' && line[10] == 'T'))
            return false;
        line = eol + 1;
    }
    return true;
}

/* Exit 1 (not a signal, not a sanitizer's report), and the reason names
 * the shard whose thread could not start. */
static void check_failed_start(const char *fail_thread, const char *storage)
{
    char out[16384];
    int status = run_failing_start(fail_thread, storage, out, sizeof out);
    if (strstr(out, "io_uring") && !strstr(out, "cannot start shard thread"))
        skip(); /* the kernel refuses io_uring: the node never got that far */
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char want[64];
    snprintf(want, sizeof want, "cannot start shard thread %s", fail_thread);
    assert_non_null(strstr(out, want));
    assert_true(only_log_lines(out));
}

static void test_start_failure_middle_thread(void **state)
{
    check_failed_start("2", "memory");
}

static void test_start_failure_last_thread(void **state)
{
    check_failed_start("3", "memory");
}

static void test_start_failure_first_thread(void **state)
{
    check_failed_start("0", "memory");
}

/* With the segment log: the data directory was prepared before the threads. */
static void test_start_failure_with_log(void **state)
{
    check_failed_start("1", "log");
}

int main(void)
{
#ifndef RINGKV_TEST_HOOKS
    print_message("test_start_failure: built without RINGKV_TEST_HOOKS; skipping\n");
    return 77;
#endif
    if (!getenv("RINGKV_BIN") || harness_target_is_redis())
        return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_failure_middle_thread),
        cmocka_unit_test(test_start_failure_last_thread),
        cmocka_unit_test(test_start_failure_first_thread),
        cmocka_unit_test(test_start_failure_with_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
