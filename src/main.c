/* main.c: ringkv's entry point.
 * Reads the settings (defaults, INI file, --flags), opens the log, builds the
 * node and runs it until SIGTERM or SIGINT (SIGHUP is ignored); or, with
 * --check-data, verifies a data directory offline (exit 0 clean, 1 damage
 * found, 2 unreadable). Every failure at start-up is one log line saying
 * why, and a non-zero exit. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "node.h"
#include "seg.h"

/* `ringkv --check-data DIR [--repair]`: verifies every segment offline. */
static int main_check_data(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--repair") != 0)) {
        fprintf(stderr, "usage: ringkv --check-data DIR [--repair]\n");
        return 2;
    }
    int rc = seg_check_dir(argv[2], argc == 4, stdout);
    if (rc < 0) {
        fprintf(stderr, "ringkv: cannot read %s: %s\n", argv[2], strerror(-rc));
        return 2;
    }
    return rc;
}

int main(int argc, char **argv)
{
    static struct cfg cfg; /* lives as long as the process; only its live settings change
                              after start-up (CONFIG SET, cfg.h) */
    if (argc > 1 && strcmp(argv[1], "--check-data") == 0)
        return main_check_data(argc, argv);
    /* as redis-server: a closed terminal, or the hang-up the kernel sends an
     * orphaned process group with a stopped member (a node SIGSTOPped when
     * the shell that started it exits), must not kill the node, starting
     * or running */
    signal(SIGHUP, SIG_IGN);
    char err[512];
    bool exit_now;
    if (cfg_load(&cfg, argc, argv, &exit_now, err, sizeof err) != 0) {
        fprintf(stderr, "ringkv: %s\n", err);
        return 2;
    }
    if (exit_now)
        return 0;
    int log_fd = 2;
    if (cfg.logfile[0]) {
        log_fd = open(cfg.logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0) {
            fprintf(stderr, "ringkv: cannot open logfile %s: %s\n", cfg.logfile, strerror(errno));
            return 1;
        }
    }
    log_init(log_fd, cfg_log_level(cfg.loglevel));
    struct node *n = node_create(&cfg);
    if (!n)
        return 1;
    int rc = node_run(n);
    node_destroy(n);
    return rc == 0 ? 0 : 1;
}
