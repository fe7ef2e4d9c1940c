/* log.h: one line per event: time, level, thread name, message.
 * Threads: any. Each line is formatted on the stack and written with one
 *   write(), so lines from different threads never interleave.
 * log_init() runs once at start-up, before threads start; log_set_thread()
 *   names the calling thread ("shard 3", "admin", "main") in the log and, cut
 *   to 15 bytes, for the OS (/proc/PID/task/TID/comm). */
#ifndef RINGKV_SRC_LOG_H
#define RINGKV_SRC_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* fd: where lines go (2 = stderr). level: the most verbose level written. */
void log_init(int fd, enum log_level level);
/* CONFIG SET loglevel: any thread, at any time (lines being written keep
 * the level they were checked at). */
void log_set_level(enum log_level level);
void log_set_thread(const char *name);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
