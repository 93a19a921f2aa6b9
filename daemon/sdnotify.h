/*
 * systemd integration without libsystemd: the sd_notify(3) datagram
 * protocol, the service watchdog, socket activation (sd_listen_fds(3)) and
 * the journal detection behind the sd-daemon(3) log level prefixes.  The
 * protocols are small and stable, so a dependency is not worth it.
 *
 * Everything here runs on the loop thread.  Outside systemd ($NOTIFY_SOCKET
 * unset) every notify call is a cheap no-op, so callers never test for it.
 */
#ifndef KILND_SDNOTIFY_H
#define KILND_SDNOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/*
 * Reads $NOTIFY_SOCKET (an absolute path, or "@name" for an abstract
 * address), $WATCHDOG_USEC and $WATCHDOG_PID, and removes all three from the
 * environment so child processes never inherit them.  If a watchdog is
 * requested for this process, a timer on `loop` sends WATCHDOG=1 every half
 * interval, so a wedged loop stops the pings and systemd restarts us.
 * Returns 0, or -KILN_E_INTERNAL with a message in err when the variables
 * are malformed or the socket cannot be created (notification then stays
 * off; the daemon can log the message and carry on).
 */
int sdnotify_init(uv_loop_t *loop, char *err, size_t errlen);

/* True when $NOTIFY_SOCKET was set and usable. */
bool sdnotify_active(void);

/* The watchdog ping interval in microseconds (half of $WATCHDOG_USEC), or 0
 * when no watchdog was requested. */
unsigned long long sdnotify_watchdog_interval_usec(void);

/*
 * Formats the STATUS= text ("3 connections, 1 job, 12.0 MiB held") into buf
 * (always NUL-terminated).  Called on the loop thread at READY and then once
 * a second; a STATUS= datagram is sent only when the text changed.
 */
typedef void (*sdnotify_status_fn)(char *buf, size_t len);
void sdnotify_set_status_source(sdnotify_status_fn fn);

/* Sends one datagram of newline-separated KEY=VALUE assignments.  Returns 0
 * (also when inactive) or -errno.  Never blocks: a full receive queue drops
 * the datagram. */
int sdnotify_send(const char *msg);

/* READY=1 with the current STATUS=: call once the socket accepts. */
void sdnotify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC), before a reload. */
void sdnotify_reloading(void);
/* READY=1 with the current STATUS=, after a reload (whether it worked or not). */
void sdnotify_reloaded(void);
/* STOPPING=1, when shutdown starts. */
void sdnotify_stopping(void);

/* Stops the timers and closes the socket.  The timers are closed with
 * uv_close(), so the loop must run once more to release them. */
void sdnotify_close(void);

/*
 * Socket activation.  When $LISTEN_PID is this process and $LISTEN_FDS >= 1,
 * checks that fd 3 is a listening AF_UNIX SOCK_STREAM socket, marks every
 * passed descriptor close-on-exec, stores fd 3 in *fd and its address in
 * path ("/run/kiln/kiln.sock", "@name" if abstract): returns 1.  Returns
 * 0 when the process was not socket-activated, or -KILN_E_INTERNAL with a
 * message in err when fd 3 is not a usable socket.  $LISTEN_PID, $LISTEN_FDS
 * and $LISTEN_FDNAMES are removed from the environment in every case.
 * The socket file of an activated socket belongs to systemd: never unlink it.
 */
int sdnotify_listen_fd(int *fd, char *path, size_t pathlen, char *err, size_t errlen);

/*
 * True when stderr is connected to the journal, so log lines should carry
 * "<N>" level prefixes: $JOURNAL_STREAM names stderr's device and inode, or
 * (for StandardError=syslog/kmsg-like setups without $JOURNAL_STREAM)
 * $INVOCATION_ID is set and stderr is a socket or pipe rather than a
 * terminal or a file.
 */
bool sdnotify_stderr_is_journal(void);

#endif
