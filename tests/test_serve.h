/*
 * csgi-serve over real sockets, for the suites that run it as a process
 * (check_workers, check_load): starting it on a deploy file of the
 * workerapp.so test module (tests/modules/workerapp.c), reading its log,
 * finding its worker processes, stopping it, and a one-request client.
 * Every wait is bounded; a failed wait fails the running test (Check).
 *
 *   CSGI_SERVE          the csgi-serve to run
 *   CSGI_WORKERAPP_DIR  where workerapp.so is
 */
#ifndef CSGI_TESTS_TEST_SERVE_H
#define CSGI_TESTS_TEST_SERVE_H

#include <sys/types.h>

/* ---- time and text ----------------------------------------------------------------- */

/* Monotonic time in milliseconds. */
long long now_ms(void);

/* Sleep ms milliseconds, signals or not. */
void sleep_ms(long ms);

/* The end of text (borrowed), short enough for a failure message. */
const char *tail(const char *text);

/* How often needle occurs in text. */
int count_in(const char *text, const char *needle);

/* ---- a client ---------------------------------------------------------------------- */

/* One answer of workerapp (or of an application answering as it does:
   "message=M pid=P built_by=B uid=U"). */
typedef struct reply {
    int status;  /* HTTP status; 0 when the exchange failed */
    int refused; /* the connect was refused */
    long pid, built_by, uid;
    char message[64];
    long long ms; /* how long the exchange took */
} reply;

/* A blocking connection to 127.0.0.1:port with 5 s send and receive
   timeouts, or -1 (*refused: 1 when the connect was refused). */
int connect_to(int port, int *refused);

/* Send a GET of path with Connection: close on fd. */
void send_get(int fd, const char *path);

/* Read the answer on fd to its end into *r and close fd. */
void read_reply(int fd, reply *r);

/* GET path on a TCP port, or on the Unix socket unix_path when not NULL,
   on a connection of its own. */
reply get_at(int port, const char *unix_path, const char *path);

/* GET path on 127.0.0.1:port. */
reply get(int port, const char *path);

/* GET path until the answer's message is message; fails the test when none
   is within timeout_ms. */
reply get_until(int port, const char *path, const char *message, long timeout_ms);

/* ---- processes --------------------------------------------------------------------- */

/* The pids of parent's living children, at most max of them in out. */
int children_of(pid_t parent, pid_t *out, int max);

/* Wait (at most timeout_ms) until parent has count children; returns how
   many it has. */
int wait_children(pid_t parent, int count, long timeout_ms);

/* Wait (at most timeout_ms) for the child pid to end: its wait status, or
   -1. */
int wait_exit(pid_t pid, long timeout_ms);

/* 1 when no process has pid (any more). */
int gone(long pid);

/* A csgi-serve (or a master forked by a test) the test runs. */
typedef struct served {
    pid_t pid;
    int port;       /* its first TCP port, once read_port read it */
    char out[4096]; /* the file of its standard output */
    char log[4096]; /* the file of its standard error */
} served;

/* The server process killed with SIGKILL when the test process exits (a
   failed test leaves none behind): set by fork_logged; a test that reaped
   it sets -1. */
extern pid_t running;

/* The csgi-serve to run (CSGI_SERVE), workerapp.so's directory
   (CSGI_WORKERAPP_DIR) and the deploy file write_ini writes. */
const char *serve_path(void);
const char *module_dir(void);
const char *ini_path(void);

/* Write the deploy file: workerapp with these app keys, an egg:csgi#http
   server section on 127.0.0.1 port 0 (verbose, grace_timeout 5 s) with
   these keys (each text a few "key = value\n" lines). */
void write_ini(const char *app_keys, const char *server_keys);

/* Write a deploy file whose line 4 is no INI line: loading it fails with
   "app.ini:4: [app:main] malformed line". */
void write_unparsable_ini(void);

/* Fork a process for s, its standard output and error in the files
   out_name and log_name of the test's directory. Returns in both
   processes, as fork does; the child dies with the test. */
pid_t fork_logged(served *s, const char *out_name, const char *log_name);

/* Wait for the "serving on" line and read the port from it. */
void read_port(served *s);

/* Start csgi-serve on the deploy file (extra: NULL, or more arguments
   before the file, NULL-terminated) and wait for its (first) port. */
void serve_start(served *s, const char *const *extra);

/* Wait (at most timeout_ms) until the log holds needle count times: 1 when
   it does. */
int wait_log(const served *s, const char *needle, int count, long timeout_ms);

/* The same, failing the test when it does not. */
void assert_waited_log(const served *s, const char *needle, int count, long timeout_ms);

/* Wait for count workers to say they accept (in all). */
void wait_accepting(const served *s, int count);

/* Stop with SIGTERM; the server must end cleanly within timeout_ms, and
   no worker may have exited with an error or a sanitizer report. */
void serve_stop(served *s, long timeout_ms);

/* The pid a pid file holds, 0 for none. */
long pidfile_pid(const char *path);

/* After a USR2 (or a HUP with preload): wait for the old master to exit
   cleanly, then make s the new one, whose pid the pid file holds. The
   test must be a subreaper (PR_SET_CHILD_SUBREAPER) for serve_stop to wait
   for it. */
void follow_new_master(served *s, const char *pidfile);

#endif
