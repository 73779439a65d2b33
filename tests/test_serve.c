/* csgi-serve over real sockets (test_serve.h). */
#include "test_serve.h"

#include "test_files.h"

#include <check.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
}

/* ---- files -------------------------------------------------------------------------- */

/* The end of a log, short enough for a failure message. */
const char *tail(const char *text)
{
    size_t len = strlen(text);
    return len > 3000 ? text + len - 3000 : text;
}

int count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- a client ------------------------------------------------------------------------ */

int connect_to(int port, int *refused)
{
    *refused = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        *refused = errno == ECONNREFUSED;
        close(fd);
        return -1;
    }
    return fd;
}

void send_get(int fd, const char *path)
{
    char request[256];
    int len = snprintf(request, sizeof(request),
                       "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path);
    if (send(fd, request, (size_t)len, MSG_NOSIGNAL) != len) {
        /* the read fails next */
    }
}

/* Read the answer on fd to its end and close fd. */
void read_reply(int fd, reply *r)
{
    char buf[4096];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof(buf) - 1 && (n = recv(fd, buf + used, sizeof(buf) - 1 - used, 0)) > 0)
        used += (size_t)n;
    buf[used] = '\0';
    close(fd);
    const char *head_end = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.1 %d", &r->status) != 1 || !head_end) {
        r->status = 0;
        return;
    }
    /* The text, after a chunk-size line when the answer is chunked. */
    const char *body = strstr(head_end, "message=");
    if (!body || sscanf(body, "message=%63s pid=%ld built_by=%ld uid=%ld", r->message, &r->pid,
                        &r->built_by, &r->uid) < 2)
        r->status = 0; /* not a whole answer */
}

/* GET path on a TCP port, or on the Unix socket unix_path when not NULL. */
reply get_at(int port, const char *unix_path, const char *path)
{
    reply r;
    memset(&r, 0, sizeof(r));
    long long start = now_ms();
    int fd = -1;
    if (unix_path) {
        struct sockaddr_un addr = {0};
        addr.sun_family = AF_UNIX;
        snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", unix_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
            r.refused = 1;
            close(fd);
            fd = -1;
        }
    } else {
        fd = connect_to(port, &r.refused);
    }
    if (fd >= 0) {
        send_get(fd, path);
        read_reply(fd, &r);
    }
    r.ms = now_ms() - start;
    return r;
}

reply get(int port, const char *path)
{
    return get_at(port, NULL, path);
}

/* GET path until the answer's message is message (within timeout_ms). */
reply get_until(int port, const char *path, const char *message, long timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    reply r;
    do {
        r = get(port, path);
        if (r.status == 200 && strcmp(r.message, message) == 0)
            return r;
        sleep_ms(20);
    } while (now_ms() < end);
    ck_abort_msg("no answer with message=%s within %ld ms (last: status %d message=%s)", message,
                 timeout_ms, r.status, r.message);
    return r;
}

/* A client asking again and again on new connections, in a thread of its
   own, while a test kills, reloads or resizes. */

/* ---- processes ----------------------------------------------------------------------- */

/* The pids of parent's children (at most max). */
int children_of(pid_t parent, pid_t *out, int max)
{
    DIR *proc = opendir("/proc");
    ck_assert_ptr_nonnull(proc);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(proc)) && n < max) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char path[64], stat[512];
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(stat, 1, sizeof(stat) - 1, f);
        fclose(f);
        stat[len] = '\0';
        const char *paren = strrchr(stat, ')');
        char state;
        long ppid;
        if (paren && sscanf(paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == parent &&
            state != 'Z')
            out[n++] = (pid_t)pid;
    }
    closedir(proc);
    return n;
}

/* Wait (at most timeout_ms) until parent has count children. */
int wait_children(pid_t parent, int count, long timeout_ms)
{
    pid_t pids[64];
    long long end = now_ms() + timeout_ms;
    int n;
    while ((n = children_of(parent, pids, 64)) != count && now_ms() < end)
        sleep_ms(20);
    return n;
}

/* Wait for pid to end (at most timeout_ms): its wait status, or -1. */
int wait_exit(pid_t pid, long timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    int status;
    do {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        sleep_ms(10);
    } while (now_ms() < end);
    return -1;
}

pid_t running = -1;

static void kill_running(void)
{
    if (running > 0)
        kill(running, SIGKILL);
}

/* Wait for the "serving on" line and read the port from it. */
void read_port(served *s)
{
    long long end = now_ms() + 10000;
    const char *line = NULL;
    while (!(line = strstr(test_read_file(s->out), "://127.0.0.1:")) && now_ms() < end) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
            ck_abort_msg("the server ended before it served: %s", tail(test_read_file(s->log)));
        sleep_ms(10);
    }
    ck_assert_msg(line != NULL, "no 'serving on' line: %s", tail(test_read_file(s->log)));
    s->port = atoi(line + strlen("://127.0.0.1:"));
    ck_assert_int_gt(s->port, 0);
}

/* Wait (at most timeout_ms) until the log holds needle count times. */
int wait_log(const served *s, const char *needle, int count, long timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    int n;
    while ((n = count_in(test_read_file(s->log), needle)) < count && now_ms() < end)
        sleep_ms(20);
    return n >= count;
}

void assert_waited_log(const served *s, const char *needle, int count, long timeout_ms)
{
    ck_assert_msg(wait_log(s, needle, count, timeout_ms), "no %d x '%s' in the log:\n%s", count,
                  needle, tail(test_read_file(s->log)));
}

const char *serve_path(void)
{
    const char *path = getenv("CSGI_SERVE");
    ck_assert_msg(path != NULL, "CSGI_SERVE is not set");
    return path;
}

const char *module_dir(void)
{
    const char *dir = getenv("CSGI_WORKERAPP_DIR");
    ck_assert_msg(dir != NULL, "CSGI_WORKERAPP_DIR is not set");
    return dir;
}

const char *ini_path(void)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s", test_tmp_path("app.ini"));
    return path;
}

/* Write the deploy file: workerapp with these app keys, a server section
   with these keys (each text a few "key = value\n" lines). */
void write_ini(const char *app_keys, const char *server_keys)
{
    char text[8192];
    snprintf(text, sizeof(text),
             "[app:main]\n"
             "use = egg:workerapp#pid\n"
             "%s"
             "\n"
             "[server:main]\n"
             "use = egg:csgi#http\n"
             "host = 127.0.0.1\n"
             "port = 0\n"
             "verbose = true\n"
             "grace_timeout = 5\n"
             "%s",
             app_keys, server_keys);
    test_write_file("app.ini", text);
}

void write_unparsable_ini(void)
{
    test_write_file("app.ini", "[app:main]\n"
                               "use = egg:workerapp#pid\n"
                               "message = never\n"
                               "this line is no ini\n"
                               "[server:main]\n"
                               "use = egg:csgi#http\n"
                               "workers = 2\n");
}

/* Fork a process for s, its standard output and error in the files
   out_name and log_name of the test's directory (emptied here, not in the
   child: read_port must not find the last server's line). Returns in both
   processes, as fork does; the child dies with the test. */
pid_t fork_logged(served *s, const char *out_name, const char *log_name)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->out, sizeof(s->out), "%s", test_tmp_path(out_name));
    snprintf(s->log, sizeof(s->log), "%s", test_tmp_path(log_name));
    unlink(s->out);
    unlink(s->log);
    atexit(kill_running);
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int out = open(s->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out, 1);
        dup2(err, 2);
    } else {
        running = s->pid;
    }
    return s->pid;
}

/* Start csgi-serve on the deploy file (extra: NULL, or more arguments
   before the file, NULL-terminated) and wait for its (first) port. */
void serve_start(served *s, const char *const *extra)
{
    const char *serve = serve_path(), *dir = module_dir(), *ini = ini_path();
    const char *argv[16] = {serve, "--allow-root", "--module-path", dir};
    size_t argc = 4;
    for (size_t i = 0; extra && extra[i] && argc < 14; i++)
        argv[argc++] = extra[i];
    argv[argc++] = ini;
    argv[argc] = NULL;
    if (fork_logged(s, "out.txt", "log.txt") == 0) {
        execv(serve, (char *const *)argv);
        _exit(127);
    }
    read_port(s);
}

/* Wait for count workers to say they accept. */
void wait_accepting(const served *s, int count)
{
    assert_waited_log(s, "accepts (generation", count, 10000);
}

/* Stop with SIGTERM; the server must end cleanly within timeout_ms, and
   no worker may have exited with an error or a sanitizer report. */
void serve_stop(served *s, long timeout_ms)
{
    kill(s->pid, SIGTERM);
    int status = wait_exit(s->pid, timeout_ms);
    running = -1;
    const char *log = test_read_file(s->log);
    if (status == -1)
        kill(s->pid, SIGKILL);
    ck_assert_msg(status != -1, "the server did not stop in %ld ms:\n%s", timeout_ms, tail(log));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d:\n%s", status,
                  tail(log));
    ck_assert_msg(!strstr(log, "Sanitizer"), "a sanitizer spoke:\n%s", tail(log));
}

/* A pid no process has (any more). */
int gone(long pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

long pidfile_pid(const char *path)
{
    FILE *file = fopen(path, "r");
    long pid = 0;
    if (file) {
        if (fscanf(file, "%ld", &pid) != 1)
            pid = 0;
        fclose(file);
    }
    return pid;
}

/* The master a USR2 (or a HUP with preload) started, once the old one
   is gone: its pid from the pid file, adopted by this test (a subreaper)
   so that serve_stop can wait for it. */
void follow_new_master(served *s, const char *pidfile)
{
    int status = wait_exit(s->pid, 15000);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the old master: status %d\n%s",
                  status, tail(test_read_file(s->log)));
    long pid = pidfile_pid(pidfile);
    ck_assert_msg(pid > 0 && pid != s->pid, "pid file: %ld", pid);
    s->pid = (pid_t)pid;
    running = s->pid;
}
