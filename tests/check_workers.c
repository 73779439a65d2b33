/*
 * Worker processes over real sockets: csgi-serve with `workers` (the
 * "serve" and "reload" cases, each test starting its own csgi-serve with
 * the workerapp.so module, tests/modules/workerapp.c) and the server API
 * (the "api" case: a master forked from the test). Each test stops its
 * servers and lasts a few seconds; every wait is bounded. Starting and
 * stopping csgi-serve, its log and the one-request client are
 * test_serve.h's (CSGI_SERVE, CSGI_WORKERAPP_DIR).
 *
 *   CSGI_WORKERS_HOST   tests/workers_host.c, a host program of the API
 */
#include "test_files.h"
#include "test_serve.h"
#include "test_tls.h"

#include <csgi.h>

#include <check.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- a client asking again and again ----------------------------------------------- */

/* A client asking again and again on new connections, in a thread of its
   own, while a test kills, reloads or resizes. */
typedef struct client_loop {
    int port;
    atomic_int stop;
    pthread_t thread;
    int requests, ok, refused, failed;
    long long max_ms;
    char last_message[64];
} client_loop;

static void *client_loop_run(void *arg)
{
    client_loop *c = arg;
    while (!atomic_load(&c->stop)) {
        reply r = get(c->port, "/");
        c->requests++;
        if (r.status == 200) {
            c->ok++;
            snprintf(c->last_message, sizeof(c->last_message), "%s", r.message);
        } else if (r.refused) {
            c->refused++;
        } else {
            c->failed++;
        }
        if (r.ms > c->max_ms)
            c->max_ms = r.ms;
        sleep_ms(2);
    }
    return NULL;
}

static void client_loop_start(client_loop *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->port = port;
    ck_assert_int_eq(pthread_create(&c->thread, NULL, client_loop_run, c), 0);
}

static void client_loop_stop(client_loop *c)
{
    atomic_store(&c->stop, 1);
    pthread_join(c->thread, NULL);
}

/* Run csgi-serve with argv (a --check): it must exit with status 1 and
   log needle. */
static void check_fails_with(served *s, const char *const *argv, const char *needle)
{
    if (fork_logged(s, "out.txt", "log.txt") == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = wait_exit(s->pid, 5000);
    running = -1;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    ck_assert_msg(strstr(test_read_file(s->log), needle), "%s", tail(test_read_file(s->log)));
}

/* ---- TLS -------------------------------------------------------------------------- */

/* GET / over https on port with curl (the test CA): the subject of the
   server's certificate curl saw, and the answer's message, in out. */
static int curl_https(int port, char *out, size_t cap)
{
    return test_shell(out, cap,
                      "curl -sS -v --max-time 10 --cacert '%s' https://localhost:%d/ 2>&1 | "
                      "grep -E 'subject:|message='",
                      test_tls_file("ca.pem"), port);
}

static void copy_pair(const char *from, const char *to_cert, const char *to_key)
{
    char name[64], out[256];
    snprintf(name, sizeof(name), "%s.pem", from);
    ck_assert_int_eq(test_shell(out, sizeof(out), "cp '%s' '%s'", test_tls_file(name), to_cert), 0);
    snprintf(name, sizeof(name), "%s.key", from);
    ck_assert_int_eq(test_shell(out, sizeof(out), "cp '%s' '%s'", test_tls_file(name), to_key), 0);
}

START_TEST(tls_workers_serve_https_and_hup_reads_certificates)
{
    char cert[1024], key[1024], keys[2560];
    snprintf(cert, sizeof(cert), "%s", test_tmp_path("live.pem"));
    snprintf(key, sizeof(key), "%s", test_tmp_path("live.key"));
    copy_pair("server", cert, key);
    snprintf(keys, sizeof(keys), "workers = 2\ncert_file = %s\nkey_file = %s\n", cert, key);
    write_ini("message = one\n", keys);
    served s;
    serve_start(&s, NULL);
    ck_assert_msg(strstr(test_read_file(s.out), "serving on https://127.0.0.1:"), "%s",
                  test_read_file(s.out));
    wait_accepting(&s, 2);
    char out[4096];
    ck_assert_msg(curl_https(s.port, out, sizeof(out)) == 0, "%s", out);
    ck_assert_msg(strstr(out, "CN=localhost") && strstr(out, "message=one"), "%s", out);
    /* A session ticket one worker made resumes on whichever worker takes
       the next connection: their ticket keys agree. (Each s_client asks
       and reads to the close, so the tickets, which TLS 1.3 sends after
       the handshake, have come.) */
    char sessions[1024];
    snprintf(sessions, sizeof(sessions), "%s", test_tmp_path("session.pem"));
#define S_CLIENT                                                                          \
    "printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "          \
    "openssl s_client -ign_eof -connect 127.0.0.1:%d -CAfile '%s' %s '%s' 2>/dev/null | " \
    "grep -E '^(New|Reused),'"
    ck_assert_int_eq(test_shell(out, sizeof(out), S_CLIENT, s.port, test_tls_file("ca.pem"),
                                "-sess_out", sessions),
                     0);
    for (int i = 0; i < 8; i++) {
        test_shell(out, sizeof(out), S_CLIENT, s.port, test_tls_file("ca.pem"), "-sess_in",
                   sessions);
        ck_assert_msg(strncmp(out, "Reused,", 7) == 0, "connection %d: %s", i, out);
    }
#undef S_CLIENT

    /* New certificate, HUP: the new generation serves with it. */
    copy_pair("other", cert, key);
    kill(s.pid, SIGHUP);
    wait_accepting(&s, 4);
    curl_https(s.port, out, sizeof(out)); /* refused: localhost is not other.test's */
    ck_assert_msg(strstr(out, "CN=other.test") && !strstr(out, "message="), "%s", out);

    /* A broken key, HUP: logged (the key's line of the deploy file says it
       too, so the reload fails), and the workers keep the last good one. */
    test_write_file("live.key", "not a key\n");
    kill(s.pid, SIGHUP);
    assert_waited_log(&s, "it keeps its old certificates", 1, 5000);
    assert_waited_log(&s, "reload failed: ", 1, 5000);
    curl_https(s.port, out, sizeof(out));
    ck_assert_msg(strstr(out, "CN=other.test"), "%s", out);

    /* Other file names: the listeners keep theirs, and the log says so. */
    snprintf(keys, sizeof(keys), "workers = 2\ncert_file = %s\nkey_file = %s\n",
             test_tls_file("server.pem"), test_tls_file("server.key"));
    write_ini("message = one\n", keys);
    kill(s.pid, SIGHUP);
    assert_waited_log(&s, "reload: the TLS keys changed", 1, 5000);
    serve_stop(&s, 10000);
}
END_TEST

START_TEST(tls_bad_files_named_at_their_line)
{
    write_ini("", "cert_file = /nonexistent/server.pem\n");
    served s;
    const char *argv[] = {serve_path(), "--check", "--module-path", module_dir(), ini_path(), NULL};
    check_fails_with(&s, argv,
                     "app.ini:10: [server:main] cert_file: /nonexistent/server.pem: No such file "
                     "or directory");
    char keys[2560];
    snprintf(keys, sizeof(keys), "cert_file = %s\nkey_file = %s\n", test_tls_file("server.pem"),
             test_tls_file("other.key"));
    write_ini("", keys);
    check_fails_with(&s, argv, "app.ini:11: [server:main] key_file: ");
    ck_assert_msg(strstr(test_read_file(s.log), "not the key of"), "%s", test_read_file(s.log));
    write_ini("", "verify_client = required\n");
    check_fails_with(&s, argv, "[server:main] verify_client: needs cert_file (TLS)");
    snprintf(keys, sizeof(keys), "cert_file = %s\nverify_client = maybe\n",
             test_tls_file("server.pem"));
    write_ini("", keys);
    check_fails_with(&s, argv, "verify_client: 'maybe' is not none, optional or required");
}
END_TEST

/* The port of the server's "serving on http://" line (its plain
   listener, the second one). */
static int plain_port_of(const served *s)
{
    const char *line = strstr(test_read_file(s->out), "serving on http://127.0.0.1:");
    ck_assert_msg(line, "%s", test_read_file(s->out));
    return atoi(line + strlen("serving on http://127.0.0.1:"));
}

START_TEST(tls_listen_https_on_the_command_line)
{
    char keys[2560];
    snprintf(keys, sizeof(keys), "cert_file = %s\nkey_file = %s\n", test_tls_file("server.pem"),
             test_tls_file("server.key"));
    write_ini("message = both\n", keys);
    served s;
    const char *extra[] = {"--listen", "https://127.0.0.1:0", "--listen", "http://127.0.0.1:0",
                           NULL};
    serve_start(&s, extra);
    int plain_port = plain_port_of(&s);
    char out[4096];
    ck_assert_msg(curl_https(s.port, out, sizeof(out)) == 0 && strstr(out, "message=both"), "%s",
                  out);
    ck_assert_str_eq(get(plain_port, "/").message, "both");
    serve_stop(&s, 10000);
}
END_TEST

/* ---- csgi-serve: processes ----------------------------------------------------------- */

/* Two workers answer, each from its own process, neither the master; each
   built its own application (no preload). */
START_TEST(workers_answer_from_their_own_processes)
{
    write_ini("message = one\n", "workers = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    ck_assert_int_eq(wait_children(s.pid, 2, 2000), 2);
    /* One worker sleeps in /block: the next connection can only be
       accepted by the other one. */
    int refused;
    int busy = connect_to(s.port, &refused);
    ck_assert_int_ge(busy, 0);
    send_get(busy, "/block?ms=500");
    sleep_ms(150);
    reply other = get(s.port, "/");
    reply blocked;
    memset(&blocked, 0, sizeof(blocked));
    read_reply(busy, &blocked);
    ck_assert_int_eq(other.status, 200);
    ck_assert_int_eq(blocked.status, 200);
    ck_assert_int_ne(other.pid, blocked.pid);
    ck_assert_int_ne(other.pid, s.pid);
    ck_assert_int_ne(blocked.pid, s.pid);
    ck_assert_int_eq(other.built_by, other.pid);
    ck_assert_int_eq(blocked.built_by, blocked.pid);
    ck_assert_str_eq(other.message, "one");
    /* PEP 3333: the application may be called in another process. */
    ck_assert_str_eq(get_at(s.port, NULL, "/multi").message, "p1,t0");
    serve_stop(&s, 3000);
}
END_TEST

/* kill -9 a worker while a client asks again and again: the worker is
   replaced within a second, no connection is refused, and at most the
   request it was answering is lost. */
START_TEST(killed_worker_is_replaced_without_refusals)
{
    write_ini("", "workers = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    client_loop c;
    client_loop_start(&c, s.port);
    sleep_ms(200);
    reply victim = get(s.port, "/");
    ck_assert_int_eq(victim.status, 200);
    long long killed_at = now_ms();
    ck_assert_int_eq(kill((pid_t)victim.pid, SIGKILL), 0);
    assert_waited_log(&s, "was killed by signal 9", 1, 2000);
    assert_waited_log(&s, "accepts (generation", 3, 2000);
    long long replaced_ms = now_ms() - killed_at;
    sleep_ms(300);
    client_loop_stop(&c);
    ck_assert_int_lt(replaced_ms, 1500);
    ck_assert_int_eq(wait_children(s.pid, 2, 2000), 2);
    ck_assert_msg(c.refused == 0, "%d refused", c.refused);
    ck_assert_msg(c.failed <= 1, "%d failed of %d", c.failed, c.requests);
    ck_assert_int_gt(c.ok, 20);
    for (int i = 0; i < 20; i++)
        ck_assert_int_ne(get(s.port, "/").pid, victim.pid);
    serve_stop(&s, 3000);
}
END_TEST

/* csgi_server_stats_get() in a worker, through workerapp's /stats. */
typedef struct figures {
    unsigned long long requests, connections, process_requests;
    unsigned workers, threads;
} figures;

static figures stats_of(int port, long *pid)
{
    reply r = get(port, "/stats");
    ck_assert_int_eq(r.status, 200);
    figures f;
    ck_assert_msg(sscanf(r.message, "r%llu,c%llu,w%u,t%u,p%llu", &f.requests, &f.connections,
                         &f.workers, &f.threads, &f.process_requests) == 5,
                  "/stats: %s", r.message);
    if (pid)
        *pid = r.pid;
    return f;
}

/* The figures an application reads add up every worker's (each copies its
   own to the master's board once a second), count workers, and keep the
   requests of a worker that was killed. */
START_TEST(stats_count_every_worker)
{
    write_ini("", "workers = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    for (int i = 0; i < 30; i++)
        ck_assert_int_eq(get(s.port, "/").status, 200);
    sleep_ms(1300); /* every worker has published since */
    long pid = 0;
    figures before = stats_of(s.port, &pid);
    ck_assert_uint_eq(before.workers, 2);
    ck_assert_uint_eq(before.threads, 1);
    ck_assert_uint_ge(before.requests, 31); /* the 30, and this one */
    ck_assert_uint_le(before.process_requests, before.requests);
    ck_assert_uint_ge(before.process_requests, 1);
    ck_assert_uint_ge(before.connections, 1); /* the asking one, at least */

    ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
    assert_waited_log(&s, "was killed by signal 9", 1, 2000);
    assert_waited_log(&s, "accepts (generation", 3, 2000);
    sleep_ms(1300);
    figures after = stats_of(s.port, NULL);
    ck_assert_uint_eq(after.workers, 2);
    /* the killed worker's published requests stay in the total */
    ck_assert_uint_ge(after.requests, before.requests);
    serve_stop(&s, 3000);
}
END_TEST

/* An application whose workers die while they start: the master backs
   off, then stops with a message naming the cause, and csgi-serve fails. */
START_TEST(workers_dying_at_start_stop_the_master)
{
    write_ini("crash = true\n", "workers = 2\n");
    served s;
    long long start = now_ms();
    serve_start(&s, NULL);
    int status = wait_exit(s.pid, 10000);
    long long elapsed = now_ms() - start;
    running = -1;
    const char *log = test_read_file(s.log);
    ck_assert_msg(status != -1, "the master did not stop:\n%s", tail(log));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d:\n%s", status,
                  tail(log));
    ck_assert_msg(strstr(log, "was killed by signal 9 (Killed) right after it started, the 5th "
                              "in a row: stopping"),
                  "%s", tail(log));
    ck_assert_msg(strstr(log, "a new one starts in 400 ms"), "no backoff:\n%s", tail(log));
    ck_assert_msg(strstr(log, "csgi-serve: the server failed: worker processes failed to start"),
                  "%s", tail(log));
    ck_assert_int_ge(elapsed, 600); /* it backed off: 0, 100, 200, 400 ms */
    ck_assert_int_lt(elapsed, 8000);
}
END_TEST

/* An application whose factory fails in the first workers: csgi-serve
   stops at once, with the deploy file's error at its place. */
START_TEST(build_failure_at_start_names_file_and_line)
{
    write_ini("fail = true\n", "workers = 2\n");
    served s;
    serve_start(&s, NULL);
    int status = wait_exit(s.pid, 5000);
    running = -1;
    const char *log = test_read_file(s.log);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d:\n%s", status,
                  tail(log));
    ck_assert_msg(strstr(log, "csgi-serve: ") && strstr(log, "app.ini:3: [app:main] fail: this "
                                                             "application is told to fail"),
                  "%s", tail(log));
    ck_assert_int_eq(count_in(log, "right after it started"), 0);
}
END_TEST

/* SIGTERM with requests in flight: they all complete, then the workers and
   the master exit, and the listener is closed. */
START_TEST(term_lets_requests_in_flight_finish)
{
    write_ini("", "workers = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    int fds[4], refused;
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_to(s.port, &refused);
        ck_assert_int_ge(fds[i], 0);
        send_get(fds[i], "/slow?ms=1000");
    }
    sleep_ms(300);
    long long term_at = now_ms();
    kill(s.pid, SIGTERM);
    for (int i = 0; i < 4; i++) {
        reply r;
        memset(&r, 0, sizeof(r));
        read_reply(fds[i], &r);
        ck_assert_msg(r.status == 200, "request %d: status %d:\n%s", i, r.status,
                      tail(test_read_file(s.log)));
    }
    ck_assert_int_ge(now_ms() - term_at, 500); /* they were in flight */
    int status = wait_exit(s.pid, 4000);
    running = -1;
    const char *log = test_read_file(s.log);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d:\n%s", status,
                  tail(log));
    ck_assert_int_eq(count_in(log, "exited with status 0"), 2);
    ck_assert_int_eq(count_in(log, "killing it"), 0);
    ck_assert(!strstr(log, "Sanitizer"));
    ck_assert(get(s.port, "/").refused);
}
END_TEST

/* SIGQUIT: the workers cut their requests and everything ends at once. */
START_TEST(quit_stops_at_once)
{
    write_ini("", "workers = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    int refused, fd = connect_to(s.port, &refused);
    ck_assert_int_ge(fd, 0);
    send_get(fd, "/slow?ms=4000");
    sleep_ms(200);
    long long quit_at = now_ms();
    kill(s.pid, SIGQUIT);
    reply r;
    memset(&r, 0, sizeof(r));
    read_reply(fd, &r);
    ck_assert_int_ne(r.status, 200);
    int status = wait_exit(s.pid, 3000);
    running = -1;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", tail(test_read_file(s.log)));
    ck_assert_int_lt(now_ms() - quit_at, 2500);
}
END_TEST

/* workers = 0 (or no workers key) serves in one process, as before; the
   --workers option gives the file's server workers. */
START_TEST(workers_zero_is_one_process_and_option_overrides)
{
    write_ini("", "workers = 0\n");
    served s;
    serve_start(&s, NULL);
    reply r = get(s.port, "/");
    ck_assert_msg(r.status == 200, "status %d refused %d:\n%s", r.status, r.refused,
                  tail(test_read_file(s.log)));
    ck_assert_int_eq(r.pid, s.pid);
    ck_assert_int_eq(wait_children(s.pid, 0, 100), 0);
    ck_assert_str_eq(get_at(s.port, NULL, "/multi").message, "p0,t0");
    /* A master's signals, alone: said and ignored, not the end of it
       (HUP's default would be: `systemctl reload`). */
    kill(s.pid, SIGHUP);
    kill(s.pid, SIGUSR2);
    assert_waited_log(&s, "ignored: reloading, upgrading and resizing need worker processes", 2,
                      3000);
    ck_assert_int_eq(get(s.port, "/").pid, s.pid);
    serve_stop(&s, 3000);

    serve_start(&s, (const char *[]){"--workers", "2", NULL});
    wait_accepting(&s, 2);
    r = get(s.port, "/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ne(r.pid, s.pid);
    ck_assert_int_eq(wait_children(s.pid, 2, 2000), 2);
    ck_assert_str_eq(get_at(s.port, NULL, "/multi").message, "p1,t0");
    serve_stop(&s, 3000);
}
END_TEST

/* Workers with two loops each, on a TCP and a Unix socket: the loops
   share the master's sockets, and a worker that ends (here, every worker
   of the first generation, after a reload) leaves them to the others: the
   Unix socket's file stays. */
START_TEST(threads_and_unix_socket_outlive_workers)
{
    write_ini("message = one\n", "workers = 2\nthreads = 2\n");
    char socket_path[4096], unix_listen[4200];
    snprintf(socket_path, sizeof(socket_path), "%s", test_tmp_path("csgi.sock"));
    snprintf(unix_listen, sizeof(unix_listen), "unix:%s", socket_path);
    served s;
    serve_start(&s, (const char *[]){"--listen", "127.0.0.1:0", "--listen", unix_listen, NULL});
    wait_accepting(&s, 2);
    ck_assert_str_eq(get(s.port, "/").message, "one");
    ck_assert_str_eq(get_at(0, socket_path, "/").message, "one");
    ck_assert_str_eq(get_at(0, socket_path, "/multi").message, "p1,t1");
    write_ini("message = two\n", "workers = 2\nthreads = 2\n");
    kill(s.pid, SIGHUP);
    assert_waited_log(&s, "stopping 2 workers of the old one", 1, 5000);
    assert_waited_log(&s, "exited with status 0", 2, 5000);
    struct stat st;
    ck_assert_int_eq(stat(socket_path, &st), 0);
    for (int i = 0; i < 10; i++) {
        ck_assert_str_eq(get_at(0, socket_path, "/").message, "two");
        ck_assert_str_eq(get(s.port, "/").message, "two");
    }
    serve_stop(&s, 3000);
    ck_assert_int_ne(stat(socket_path, &st), 0); /* the master removes it */
}
END_TEST

/* ---- csgi-serve: listeners and the process -------------------------------------------- */

/* The pid a pid file names, 0 for none. */
/* chdir comes before the listeners (a relative Unix socket lands in it),
   the socket file gets unix_mode, the pid file (written under the umask)
   names the master while it serves, a second server on the same pid file
   refuses to start, and the master removes both files when it stops. With
   workers as without. */
START_TEST(unix_mode_umask_chdir_and_pidfile)
{
    char dir[1024], socket_path[1100], pidfile[1100], keys[3000];
    snprintf(dir, sizeof(dir), "%s", test_tmp_path("run"));
    mkdir(dir, 0755);
    snprintf(socket_path, sizeof(socket_path), "%s/csgi.sock", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/csgi.pid", dir);
    for (int workers = 0; workers <= 1; workers++) {
        snprintf(keys, sizeof(keys),
                 "workers = %d\nbacklog = 64\nunix_mode = 0660\numask = 077\nchdir = %s\n"
                 "pidfile = %s\n",
                 workers, dir, pidfile);
        write_ini("", keys);
        served s;
        serve_start(
            &s, (const char *[]){"--listen", "127.0.0.1:0", "--listen", "unix:csgi.sock", NULL});
        if (workers)
            wait_accepting(&s, 1);
        struct stat st;
        ck_assert_int_eq(stat(socket_path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0660);
        ck_assert_int_eq(get_at(0, socket_path, "/").status, 200);
        ck_assert_int_eq(pidfile_pid(pidfile), s.pid);
        ck_assert_int_eq(stat(pidfile, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600); /* 0644 under umask 077 */

        /* A second server on the same pid file (and another socket). */
        snprintf(keys, sizeof(keys), "pidfile = %s\n", pidfile);
        write_ini("", keys);
        served second;
        if (fork_logged(&second, "out2.txt", "log2.txt") == 0) {
            execl(serve_path(), serve_path(), "--allow-root", "--module-path", module_dir(),
                  ini_path(), (char *)NULL);
            _exit(127);
        }
        int status = wait_exit(second.pid, 5000);
        running = s.pid;
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "status %d", status);
        const char *log = test_read_file(second.log);
        ck_assert_msg(strstr(log, "names process") && strstr(log, "which is running"), "%s",
                      tail(log));
        ck_assert_int_eq(pidfile_pid(pidfile), s.pid); /* left alone */

        serve_stop(&s, 3000);
        ck_assert_int_ne(stat(pidfile, &st), 0);
        ck_assert_int_ne(stat(socket_path, &st), 0);
    }
}
END_TEST

/* A TCP socket listening on 127.0.0.1, its port in *port. */
static int listening_tcp(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

static int listening_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {0};
    addr.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(path), sizeof(addr.sun_path));
    memcpy(addr.sun_path, path, strlen(path) + 1);
    unlink(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    return fd;
}

/* The sockets a server must not bind: a TEST-NET address, not this
   host's. Socket activation replaces it. */
#define UNBINDABLE "192.0.2.1:9"

/* Socket activation as systemd does it, by the test: a TCP and a Unix
   socket at descriptors 3 and 4, LISTEN_FDS=2 and LISTEN_PID the server's
   pid. csgi-serve serves on them (its worker too) instead of binding its
   --listen address, and leaves the Unix socket's file, which is not its
   own, in place. */
START_TEST(socket_activation_by_hand)
{
    write_ini("", "workers = 1\n");
    char socket_path[1024];
    snprintf(socket_path, sizeof(socket_path), "%s", test_tmp_path("activated.sock"));
    int port = 0;
    int tcp = listening_tcp(&port), local = listening_unix(socket_path);
    /* Before the descriptors move: Check reports through one of them. */
    const char *serve = serve_path(), *dir = module_dir(), *ini = ini_path();
    served s;
    if (fork_logged(&s, "out.txt", "log.txt") == 0) {
        /* Out of the way first: either may sit at 3 or 4 already. */
        int high_tcp = fcntl(tcp, F_DUPFD, 100), high_local = fcntl(local, F_DUPFD, 100);
        dup2(high_tcp, 3); /* dup2 clears close-on-exec */
        dup2(high_local, 4);
        char pid[32];
        snprintf(pid, sizeof(pid), "%ld", (long)getpid());
        setenv("LISTEN_FDS", "2", 1);
        setenv("LISTEN_PID", pid, 1);
        execl(serve, serve, "--allow-root", "--module-path", dir, "--listen", UNBINDABLE, ini,
              (char *)NULL);
        _exit(127);
    }
    close(tcp);
    close(local);
    read_port(&s);
    ck_assert_int_eq(s.port, port);
    ck_assert_ptr_nonnull(strstr(test_read_file(s.out), "serving on unix:"));
    wait_accepting(&s, 1);
    reply r = get(port, "/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ne(r.pid, s.pid); /* the worker */
    ck_assert_int_eq(get_at(0, socket_path, "/").status, 200);
    serve_stop(&s, 3000);
    struct stat st;
    ck_assert_int_eq(stat(socket_path, &st), 0); /* systemd's file */
    unlink(socket_path);
}
END_TEST

/* The same with systemd's own tool, when it is installed: it binds, waits
   for the first client, then execs csgi-serve with the sockets. */
START_TEST(socket_activation_by_systemd_socket_activate)
{
    if (system("command -v systemd-socket-activate >/dev/null 2>&1") != 0)
        return; /* not installed: socket_activation_by_hand covers it */
    write_ini("", "");
    char socket_path[1024], tcp_address[64];
    snprintf(socket_path, sizeof(socket_path), "%s", test_tmp_path("activate.sock"));
    unlink(socket_path);
    int port = 0;
    close(listening_tcp(&port)); /* a port free a moment ago */
    snprintf(tcp_address, sizeof(tcp_address), "127.0.0.1:%d", port);
    served s;
    if (fork_logged(&s, "out.txt", "log.txt") == 0) {
        execlp("systemd-socket-activate", "systemd-socket-activate", "-l", tcp_address, "-l",
               socket_path, serve_path(), "--allow-root", "--module-path", module_dir(), "--listen",
               UNBINDABLE, ini_path(), (char *)NULL);
        _exit(127);
    }
    assert_waited_log(&s, "Listening on", 2, 5000);
    reply r = get(port, "/"); /* starts csgi-serve, then waits in the queue for it */
    ck_assert_msg(r.status == 200, "status %d:\n%s", r.status, tail(test_read_file(s.log)));
    ck_assert_int_eq(r.pid, s.pid); /* exec'd in place: LISTEN_PID is its pid */
    ck_assert_int_eq(get_at(0, socket_path, "/").status, 200);
    serve_stop(&s, 3000);
    unlink(socket_path);
}
END_TEST

/* user = nobody: the process that serves runs as nobody once it has
   bound (as root) its port; with workers, the workers do, and the master
   keeps root (it removes the pid file). Needs root: skipped otherwise. */
START_TEST(user_nobody_serves_after_binding)
{
    if (getuid() != 0)
        return;
    struct passwd *nobody = getpwnam("nobody");
    ck_assert_ptr_nonnull(nobody);
    for (int workers = 0; workers <= 1; workers++) {
        char keys[256];
        snprintf(keys, sizeof(keys), "workers = %d\nuser = nobody\n", workers);
        write_ini("", keys);
        served s;
        serve_start(&s, NULL);
        if (workers)
            wait_accepting(&s, 1);
        reply r = get(s.port, "/");
        ck_assert_msg(r.status == 200, "status %d:\n%s", r.status, tail(test_read_file(s.log)));
        ck_assert_int_eq(r.uid, (long)nobody->pw_uid);
        if (workers)
            ck_assert_int_ne(r.pid, s.pid);
        serve_stop(&s, 3000);
    }
    /* A group alone. */
    write_ini("", "group = nogroup\n");
    served s;
    serve_start(&s, NULL);
    reply r = get(s.port, "/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.uid, 0);
    serve_stop(&s, 3000);
}
END_TEST

/* As root, csgi-serve refuses to serve without user (or allow_root),
   and serves with it. Needs root: skipped otherwise. */
START_TEST(root_without_user_is_refused)
{
    if (geteuid() != 0)
        return;
    write_ini("", "");
    served s;
    if (fork_logged(&s, "out.txt", "log.txt") == 0) {
        execl(serve_path(), serve_path(), "--module-path", module_dir(), ini_path(), (char *)NULL);
        _exit(127);
    }
    int status = wait_exit(s.pid, 5000);
    running = -1;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    const char *log = test_read_file(s.log);
    ck_assert_msg(strstr(log, "app.ini:5: [server:main] refusing to serve as root: set user (the "
                              "user to serve as), or allow_root = true"),
                  "%s", tail(log));
    ck_assert_ptr_null(strstr(test_read_file(s.out), "serving on"));

    write_ini("", "user = nobody\n");
    if (fork_logged(&s, "out.txt", "log.txt") == 0) {
        execl(serve_path(), serve_path(), "--module-path", module_dir(), ini_path(), (char *)NULL);
        _exit(127);
    }
    read_port(&s);
    ck_assert_int_eq(get(s.port, "/").status, 200);
    serve_stop(&s, 3000);
}
END_TEST

/* ---- csgi-serve: the access log ------------------------------------------------------ */

/* Both workers answer, one while the other sleeps in /block: each writes
   a line tagged tag (the pid of each in pids). */
static void answer_from_both(int port, const char *tag, long pids[2])
{
    char path[128];
    snprintf(path, sizeof(path), "/block?ms=300&tag=%s", tag);
    int refused;
    int busy = connect_to(port, &refused);
    ck_assert_int_ge(busy, 0);
    send_get(busy, path);
    sleep_ms(100);
    snprintf(path, sizeof(path), "/?tag=%s", tag);
    reply other = get(port, path), blocked;
    memset(&blocked, 0, sizeof(blocked));
    read_reply(busy, &blocked);
    ck_assert_int_eq(other.status, 200);
    ck_assert_int_eq(blocked.status, 200);
    ck_assert_int_ne(other.pid, blocked.pid);
    pids[0] = blocked.pid;
    pids[1] = other.pid;
}

/* The lines of a log file: each a whole one ("PID /path?query\n", the
   format of the test), count those with tag, and check that the lines of
   each pid are there. */
static int tagged_lines(const char *path, const char *tag, const long pids[2])
{
    const char *text = test_read_file(path);
    int count = 0, seen[2] = {0, 0};
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        ck_assert_msg(nl != NULL, "a line cut short in %s:\n%s", path, tail(text));
        long pid = 0;
        char target[256];
        ck_assert_msg(sscanf(line, "%ld %255s", &pid, target) == 2 && pid > 0,
                      "not a line of the format: %.*s", (int)(nl - line), line);
        if (strstr(target, tag)) {
            count++;
            for (int i = 0; i < 2; i++)
                seen[i] |= pid == pids[i];
        }
        line = nl + 1;
    }
    ck_assert_msg(!count || (seen[0] && seen[1]), "not both workers' lines in %s:\n%s", path,
                  tail(text));
    return count;
}

/* A log file in the test's directory and the name it is rotated to
   (name.1), neither there yet. */
typedef char log_file[4200];

static void log_files(const char *name, char *path, char *rotated)
{
    snprintf(path, sizeof(log_file), "%.4096s", test_tmp_path(name));
    snprintf(rotated, sizeof(log_file), "%.4096s.1", path);
    unlink(path);
    unlink(rotated);
}

/* With workers, each worker writes its own lines to the access log
   (--access-log); USR1 to the master reaches every worker, which reopens
   the file: after a rename, the next lines go to a new file, the buffered
   ones to the renamed one; a graceful stop writes what is buffered.
   --log-level is the section's log_level. */
START_TEST(workers_share_the_access_log_and_reopen_it_on_usr1)
{
    /* A flush only on USR1 and at the stop (60 s): every line written
       before comes from a flush the test asked for. */
    write_ini("", "workers = 2\naccess_log_format = %%P %%U%%q\naccess_log_flush = 60\n");
    log_file log_path, rotated;
    log_files("access.log", log_path, rotated);
    served s;
    serve_start(&s, (const char *[]){"--access-log", log_path, "--log-level", "info", NULL});
    wait_accepting(&s, 2);
    long before[2], after[2];
    answer_from_both(s.port, "before", before);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(get(s.port, "/?tag=before").status, 200);
    ck_assert_str_eq(test_read_file(log_path), ""); /* buffered, in each worker */

    ck_assert_int_eq(rename(log_path, rotated), 0);
    kill(s.pid, SIGUSR1);
    assert_waited_log(&s, "reopening the log files", 2, 5000);
    answer_from_both(s.port, "after", after);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(get(s.port, "/?tag=after").status, 200);
    serve_stop(&s, 5000);

    ck_assert_int_eq(before[0] + before[1], after[0] + after[1]); /* the same two workers */
    ck_assert_int_eq(tagged_lines(rotated, "tag=before", before), 22);
    ck_assert_int_eq(tagged_lines(rotated, "tag=after", after), 0);
    ck_assert_int_eq(tagged_lines(log_path, "tag=after", after), 22);
    ck_assert_int_eq(tagged_lines(log_path, "tag=before", before), 0);
    ck_assert_msg(!strstr(test_read_file(s.log), "signal 10 (User defined signal 1) ignored"), "%s",
                  tail(test_read_file(s.log)));

    /* The option is checked as the key is: --check says what is wrong. */
    const char *argv[] = {serve_path(), "--module-path", module_dir(), "--log-level",
                          "loud",       "--check",       ini_path(),   NULL};
    check_fails_with(&s, argv, "log_level: 'loud' is not a log level");
}
END_TEST

/* error_log: the master's and the workers' standard error go to the
   file (created 0640); after a rotation, USR1 makes each of them reopen
   it: the lines written after are in the new file, none in the old. */
START_TEST(error_log_takes_standard_error_and_reopens_on_usr1)
{
    write_ini("", "workers = 2\n");
    log_file path, rotated;
    log_files("error.log", path, rotated);
    served s;
    serve_start(&s, (const char *[]){"--error-log", path, "--log-level", "info", NULL});
    ck_assert_str_eq(test_read_file(s.log), "");     /* nothing on the old standard error */
    snprintf(s.log, sizeof(s.log), "%.4000s", path); /* the waits read the file */
    wait_accepting(&s, 2);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);

    ck_assert_int_eq(rename(path, rotated), 0);
    kill(s.pid, SIGUSR1);
    assert_waited_log(&s, "signal USR1: the workers reopen their log files", 1, 5000);
    long long end = now_ms() + 5000;
    while (count_in(test_read_file(rotated), "reopening the log files") < 2 && now_ms() < end)
        sleep_ms(20);
    ck_assert_int_eq(count_in(test_read_file(rotated), "reopening the log files"), 2);
    sleep_ms(100);
    kill(s.pid, SIGTTOU); /* one worker stops, and says so in the new file */
    assert_waited_log(&s, "(Terminated), stopping", 1, 5000);
    ck_assert_int_eq(count_in(test_read_file(rotated), "stopping"), 0);
    serve_stop(&s, 5000);
}
END_TEST

/* ---- csgi-serve: reloads and limits --------------------------------------------------- */

/* HUP with a changed file while a client asks again and again: the new
   pipeline answers, no request fails, and the old workers stop only after
   the new ones accept (their application takes 1.5 s to build, and no
   request waits that long). */
START_TEST(hup_reloads_without_failed_requests)
{
    write_ini("message = one\n", "workers = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    reply before = get(s.port, "/");
    ck_assert_str_eq(before.message, "one");
    client_loop c;
    client_loop_start(&c, s.port);
    sleep_ms(100);
    write_ini("message = two\nbuild_delay_ms = 1500\n", "workers = 2\numask = 027\n");
    kill(s.pid, SIGHUP);
    reply after = get_until(s.port, "/", "two", 8000);
    /* The master's own settings do not change with a reload: said. */
    assert_waited_log(&s, "reload: umask changed; a reload keeps the master's", 1, 1000);
    assert_waited_log(&s, "stopping 2 workers of the old one", 1, 3000);
    assert_waited_log(&s, "exited with status 0", 2, 8000);
    sleep_ms(100);
    client_loop_stop(&c);
    ck_assert_msg(c.failed == 0 && c.refused == 0, "%d failed, %d refused of %d", c.failed,
                  c.refused, c.requests);
    ck_assert_msg(c.max_ms < 1000, "a request waited %lld ms: old workers went too soon", c.max_ms);
    ck_assert_str_eq(c.last_message, "two");
    ck_assert_int_ne(after.pid, before.pid);
    ck_assert(gone(before.pid));
    ck_assert_int_eq(wait_children(s.pid, 2, 2000), 2);
    serve_stop(&s, 3000);
}
END_TEST

/* HUP with a file that no longer parses, then with an application that
   fails to build in the new workers: each time the old workers keep
   serving (the same processes) and the log names the file and line; a
   good file afterwards reloads. */
START_TEST(hup_with_broken_file_keeps_old_workers)
{
    write_ini("message = one\n", "workers = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    pid_t workers[2];
    ck_assert_int_eq(children_of(s.pid, workers, 2), 2);
    client_loop c;
    client_loop_start(&c, s.port);

    write_unparsable_ini();
    kill(s.pid, SIGHUP);
    assert_waited_log(&s, "reload failed: ", 1, 3000);
    ck_assert_msg(strstr(test_read_file(s.log), "app.ini:4: [app:main] malformed line"), "%s",
                  tail(test_read_file(s.log)));

    write_ini("message = three\nfail = true\n", "workers = 2\n");
    kill(s.pid, SIGHUP);
    assert_waited_log(&s, "reload failed: ", 2, 5000);
    ck_assert_msg(strstr(test_read_file(s.log), "cannot build the application: ") &&
                      strstr(test_read_file(s.log),
                             "app.ini:4: [app:main] fail: this application is "
                             "told to fail; the 2 workers of generation 1 keep "
                             "serving"),
                  "%s", tail(test_read_file(s.log)));
    ck_assert_int_eq(wait_children(s.pid, 2, 3000), 2);
    pid_t now[2];
    ck_assert_int_eq(children_of(s.pid, now, 2), 2);
    ck_assert((now[0] == workers[0] && now[1] == workers[1]) ||
              (now[0] == workers[1] && now[1] == workers[0]));
    ck_assert_str_eq(get(s.port, "/").message, "one");

    write_ini("message = four\n", "workers = 2\n");
    kill(s.pid, SIGHUP);
    get_until(s.port, "/", "four", 5000);
    client_loop_stop(&c);
    ck_assert_msg(c.failed == 0 && c.refused == 0, "%d failed, %d refused of %d", c.failed,
                  c.refused, c.requests);
    serve_stop(&s, 3000);
}
END_TEST

/* TTIN adds a worker, TTOU takes one away, never the last. */
START_TEST(ttin_and_ttou_change_the_count)
{
    write_ini("", "workers = 1\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 1);
    ck_assert_int_eq(wait_children(s.pid, 1, 2000), 1);
    kill(s.pid, SIGTTIN);
    wait_accepting(&s, 2);
    ck_assert_int_eq(wait_children(s.pid, 2, 2000), 2);
    kill(s.pid, SIGTTIN);
    wait_accepting(&s, 3);
    ck_assert_int_eq(wait_children(s.pid, 3, 2000), 3);
    kill(s.pid, SIGTTOU);
    ck_assert_int_eq(wait_children(s.pid, 2, 3000), 2);
    kill(s.pid, SIGTTOU);
    ck_assert_int_eq(wait_children(s.pid, 1, 3000), 1);
    kill(s.pid, SIGTTOU); /* the last one stays */
    sleep_ms(200);
    ck_assert_int_eq(wait_children(s.pid, 1, 100), 1);
    ck_assert_int_eq(get(s.port, "/").status, 200);
    serve_stop(&s, 3000);
}
END_TEST

/* max_requests: a worker is replaced after that many requests, its
   replacement accepting before it stops: no request fails. */
START_TEST(max_requests_recycles_workers)
{
    write_ini("", "workers = 1\nmax_requests = 5\nmax_requests_jitter = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 1);
    long first = 0;
    int answered_by_first = 0, pids = 1;
    long last = 0;
    for (int i = 0; i < 30; i++) {
        reply r = get(s.port, "/");
        ck_assert_msg(r.status == 200, "request %d: status %d", i, r.status);
        if (!first)
            first = r.pid;
        if (r.pid == first)
            answered_by_first++;
        if (last && r.pid != last)
            pids++;
        last = r.pid;
        sleep_ms(10);
    }
    ck_assert_int_ge(answered_by_first, 5); /* not before the limit */
    ck_assert_int_ge(pids, 3);              /* 30 requests: several workers */
    ck_assert_msg(strstr(test_read_file(s.log), "reached max_requests"), "%s",
                  tail(test_read_file(s.log)));
    ck_assert_int_eq(wait_children(s.pid, 1, 3000), 1);
    serve_stop(&s, 3000);
}
END_TEST

/* preload: the master builds the application before forking; a HUP
   starts a new master (new code, not only a new file), which builds it
   again; a factory that fails stops csgi-serve before any worker starts. */
START_TEST(preload_builds_in_the_master)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char pidfile[4096];
    snprintf(pidfile, sizeof(pidfile), "%s", test_tmp_path("serve.pid"));
    char server_keys[4200];
    snprintf(server_keys, sizeof(server_keys), "workers = 2\npreload = true\npidfile = %s\n",
             pidfile);
    write_ini("message = one\n", server_keys);
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    reply r = get(s.port, "/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.built_by, s.pid);
    ck_assert_int_ne(r.pid, s.pid);
    write_ini("message = two\n", server_keys);
    kill(s.pid, SIGHUP);
    assert_waited_log(&s, "signal HUP: upgrading: new master", 1, 3000);
    follow_new_master(&s, pidfile);
    r = get_until(s.port, "/", "two", 5000);
    ck_assert_int_eq(r.built_by, s.pid);
    write_ini("message = three\nfail = true\n", server_keys);
    kill(s.pid, SIGHUP);
    assert_waited_log(&s, "upgrade failed: ", 1, 5000);
    ck_assert_msg(strstr(test_read_file(s.log), "app.ini:4: [app:main] fail:"), "%s",
                  tail(test_read_file(s.log)));
    ck_assert_str_eq(get(s.port, "/").message, "two");
    ck_assert_int_eq(pidfile_pid(pidfile), s.pid);
    serve_stop(&s, 3000);

    write_ini("fail = true\n", "workers = 2\npreload = true\n");
    if (fork_logged(&s, "out.txt", "log.txt") == 0) {
        execl(serve_path(), serve_path(), "--allow-root", "--module-path", module_dir(), ini_path(),
              (char *)NULL);
        _exit(127);
    }
    int status = wait_exit(s.pid, 5000);
    running = -1;
    const char *log = test_read_file(s.log);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s", tail(log));
    ck_assert_msg(strstr(log, "app.ini:3: [app:main] fail:"), "%s", tail(log));
    ck_assert_int_eq(count_in(log, "worker"), 0);
}
END_TEST

/* timeout (uWSGI's harakiri): a request that keeps its worker's loop busy
   for 30 s is cut at 2 s: its worker is killed and replaced, the log names
   the request and how long it ran, and the other worker answers all along.
   A loop that waits for clients (no request) is not busy. */
START_TEST(timeout_kills_a_stuck_worker)
{
    write_ini("", "workers = 2\ntimeout = 2\n");
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    sleep_ms(3000); /* idle loops beat: no worker is killed for waiting */
    ck_assert_msg(!strstr(test_read_file(s.log), "timeout:"), "%s", tail(test_read_file(s.log)));

    int refused;
    int fd = connect_to(s.port, &refused);
    ck_assert_int_ge(fd, 0);
    long long start = now_ms();
    send_get(fd, "/block?ms=30000");
    /* The other worker keeps answering while one is stuck (from the moment
       it is: a connection the stuck one took before would be lost with it). */
    sleep_ms(300);
    client_loop c;
    client_loop_start(&c, s.port);
    reply stuck;
    memset(&stuck, 0, sizeof(stuck));
    read_reply(fd, &stuck); /* the connection ends when its worker is killed */
    long long took = now_ms() - start;
    ck_assert_int_eq(stuck.status, 0);
    ck_assert_msg(took >= 1900 && took < 8000, "the stuck request ended after %lld ms", took);
    assert_waited_log(&s, "for its timeout; a new one starts", 1, 3000);
    wait_accepting(&s, 3);
    sleep_ms(200);
    client_loop_stop(&c);
    ck_assert_msg(c.failed == 0 && c.refused == 0 && c.ok > 2, "%d failed, %d refused, %d ok",
                  c.failed, c.refused, c.ok);
    ck_assert_msg(c.max_ms < 1500, "a request waited %lld ms", c.max_ms);
    const char *log = test_read_file(s.log);
    ck_assert_msg(strstr(log, "has been in GET /block?ms=30000 for 2.") ||
                      strstr(log, "has been in GET /block?ms=30000 for 3."),
                  "%s", tail(log));
    ck_assert_msg(strstr(log, "(loop 0; timeout = 2 s): killing it"), "%s", tail(log));
    ck_assert_int_eq(wait_children(s.pid, 2, 3000), 2);
    serve_stop(&s, 3000);

    /* Without workers nothing would replace the process: refused. */
    write_ini("", "timeout = 2\n");
    const char *argv[] = {serve_path(), "--module-path", module_dir(), "--check", ini_path(), NULL};
    check_fails_with(&s, argv, "app.ini:10: [server:main] timeout: needs workers = 1 or more");
    /* csgi-serve --timeout is the key, checked as the key is. */
    write_ini("", "workers = 2\n");
    const char *flag[] = {
        serve_path(), "--module-path", module_dir(), "--workers", "0", "--timeout",
        "2",          "--check",       ini_path(),   NULL};
    check_fails_with(&s, flag, "timeout: needs workers = 1 or more");
}
END_TEST

/* USR2: a new master, from the program's file, inherits the listeners,
   starts its workers on the deploy file as it is now, and the old master
   retires once they accept: no request fails, none is refused, the pid
   file names the new master (the old one's waited beside it, .oldbin).
   A new master that cannot start (a broken file) leaves the old one
   serving, its pid file back, and the log says why at the file's line. */
START_TEST(usr2_upgrades_in_place)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char pidfile[4096];
    snprintf(pidfile, sizeof(pidfile), "%s", test_tmp_path("serve.pid"));
    char server_keys[4200];
    snprintf(server_keys, sizeof(server_keys), "workers = 2\npidfile = %s\n", pidfile);
    write_ini("message = one\n", server_keys);
    served s;
    serve_start(&s, NULL);
    wait_accepting(&s, 2);
    pid_t old_master = s.pid;
    client_loop c;
    client_loop_start(&c, s.port);
    sleep_ms(100);

    write_ini("message = two\nbuild_delay_ms = 500\n", server_keys);
    kill(s.pid, SIGUSR2);
    assert_waited_log(&s, "upgrade: the new master", 1, 8000);
    follow_new_master(&s, pidfile);
    ck_assert(access(test_tmp_path("serve.pid.oldbin"), F_OK) != 0);
    reply r = get_until(s.port, "/", "two", 3000);
    ck_assert_int_ne(r.built_by, old_master);
    sleep_ms(200);

    write_ini("message = three\nthis line is no ini\n", server_keys);
    kill(s.pid, SIGUSR2);
    assert_waited_log(&s, "upgrade failed: ", 1, 5000);
    const char *log = test_read_file(s.log);
    ck_assert_msg(strstr(log, "app.ini:4: [app:main] malformed line") &&
                      strstr(log, "stopped before it served"),
                  "%s", tail(log));
    ck_assert_int_eq(pidfile_pid(pidfile), s.pid);
    ck_assert_str_eq(get(s.port, "/").message, "two");
    client_loop_stop(&c);
    ck_assert_msg(c.failed == 0 && c.refused == 0 && c.ok > 2, "%d failed, %d refused, %d ok",
                  c.failed, c.refused, c.ok);
    ck_assert_str_eq(c.last_message, "two");
    serve_stop(&s, 5000);
    ck_assert(access(pidfile, F_OK) != 0);
}
END_TEST

START_TEST(tls_usr2_upgrade_keeps_https)
{
    /* The new master adopts the old one's listeners (LISTEN_FDS): the TLS
       one stays TLS, the plain one plain. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char keys[2560], pidfile[1024];
    snprintf(pidfile, sizeof(pidfile), "%s", test_tmp_path("serve.pid"));
    snprintf(keys, sizeof(keys), "workers = 1\npidfile = %s\ncert_file = %s\nkey_file = %s\n",
             pidfile, test_tls_file("server.pem"), test_tls_file("server.key"));
    write_ini("message = one\n", keys);
    served s;
    const char *extra[] = {"--listen", "https://127.0.0.1:0", "--listen", "http://127.0.0.1:0",
                           NULL};
    serve_start(&s, extra);
    int plain_port = plain_port_of(&s);
    wait_accepting(&s, 1);
    write_ini("message = two\n", keys);
    kill(s.pid, SIGUSR2);
    assert_waited_log(&s, "upgrade: the new master", 1, 8000);
    follow_new_master(&s, pidfile);
    get_until(plain_port, "/", "two", 5000);
    char out[4096];
    ck_assert_msg(curl_https(s.port, out, sizeof(out)) == 0 && strstr(out, "message=two"), "%s",
                  out);
    serve_stop(&s, 5000);
}
END_TEST

/* ---- the server API ------------------------------------------------------------------ */

/* An application answering as workerapp does: "message=M pid=P built_by=B"
   (M the state's text), / at once, /block after 500 ms of sleep. */
typedef struct api_app {
    char message[32];
    long built_by;
} api_app;

static csgi_body *api_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    const api_app *app = state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    if (path && strcmp(path, "/block") == 0)
        sleep_ms(500);
    char text[128];
    int len = snprintf(text, sizeof(text), "message=%s pid=%ld built_by=%ld\n", app->message,
                       (long)getpid(), app->built_by);
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(environ, text, (size_t)len);
}

static void api_destroy(void *state)
{
    free(state);
}

static const csgi_app_type api_type = {"api", api_call, api_destroy};

static csgi_app *api_app_new(const char *message)
{
    api_app *state = calloc(1, sizeof(*state));
    if (!state)
        return NULL;
    snprintf(state->message, sizeof(state->message), "%s", message);
    state->built_by = (long)getpid();
    csgi_app *app = NULL;
    return csgi_app_new(&app, &api_type, state) == 0 ? app : NULL;
}

/* A source of generations: load N makes "genN", except that load fails at
   fail_load and the workers' build fails at fail_build. */
typedef struct counting_source {
    unsigned workers; /* what load asks for */
    unsigned loads, fail_load, fail_build;
} counting_source;

static int counting_load(void *state, void **out, csgi_server_options *options,
                         csgi_load_error *error)
{
    counting_source *source = state;
    unsigned n = ++source->loads;
    if (n == source->fail_load) {
        snprintf(error->text, sizeof(error->text), "generation %u refused to load", n);
        return CSGI_EINVAL;
    }
    unsigned *generation = malloc(sizeof(*generation));
    if (!generation)
        return CSGI_ENOMEM;
    *generation = n;
    options->workers = source->workers;
    *out = generation;
    return 0;
}

static int counting_build(void *state, csgi_app **out, void *generation, csgi_load_error *error)
{
    const counting_source *source = state;
    unsigned n = *(unsigned *)generation;
    if (n == source->fail_build) {
        snprintf(error->text, sizeof(error->text), "generation %u refused to build", n);
        return CSGI_EINVAL;
    }
    char message[32];
    snprintf(message, sizeof(message), "gen%u", n);
    *out = api_app_new(message);
    return *out ? 0 : CSGI_ENOMEM;
}

static void counting_release(void *state, void *generation)
{
    (void)state;
    free(generation);
}

static const csgi_server_source_type counting_type = {"the counting source", counting_load,
                                                      counting_build, counting_release, NULL};

/* Fork a master running server (in the child: listen on port 0, run until
   a signal, _exit with 0 or 1); read its port. */
static void api_master_start(served *s, csgi_server *server)
{
    if (fork_logged(s, "api-out.txt", "api-log.txt") == 0) {
        int rc = csgi_server_listen(server, "127.0.0.1:0");
        if (rc == 0)
            rc = csgi_server_run_until_signal(server);
        csgi_server_free(server);
        fflush(NULL);
        _exit(rc == 0 ? 0 : 1);
    }
    csgi_server_free(server); /* the child's copy serves */
    read_port(s);
}

static csgi_server_options api_options(unsigned workers)
{
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.workers = workers;
    options.verbose = 1;
    options.grace_timeout_ms = 3000;
    return options;
}

/* csgi_server_new with workers: the application built before the fork
   serves in each worker (built_by the master); start and run are the
   master's business. */
START_TEST(api_workers_serve_a_built_application)
{
    csgi_server_options options = api_options(2);
    csgi_server *server = NULL;
    ck_assert_int_eq(csgi_server_new(&server, api_app_new("built"), &options, NULL), 0);
    ck_assert_int_eq(csgi_server_start(server), CSGI_ESTATE);
    ck_assert_int_eq(csgi_server_run(server), CSGI_ESTATE);
    served s;
    api_master_start(&s, server);
    wait_accepting(&s, 2);
    int refused, busy = connect_to(s.port, &refused);
    ck_assert_int_ge(busy, 0);
    send_get(busy, "/block");
    sleep_ms(150);
    reply other = get(s.port, "/"), blocked;
    memset(&blocked, 0, sizeof(blocked));
    read_reply(busy, &blocked);
    ck_assert_int_eq(other.status, 200);
    ck_assert_int_eq(blocked.status, 200);
    ck_assert_int_ne(other.pid, blocked.pid);
    ck_assert_int_eq(other.built_by, getpid()); /* built here, before the fork */
    ck_assert_str_eq(other.message, "built");
    serve_stop(&s, 3000);

    /* With a host's loop there are no workers. */
    options.version = 3; /* a version 3 struct has no workers field: it is not read */
    options.workers = 99;
    ck_assert_int_eq(csgi_server_new(&server, api_app_new("v3"), &options, NULL), 0);
    ck_assert_int_eq(csgi_server_listen(server, "127.0.0.1:0"), 0);
    ck_assert_int_eq(csgi_server_start(server), 0);
    csgi_server_free(server);
}
END_TEST

/* csgi_server_new_source: each worker builds its generation's application;
   HUP loads the next generation; a load or a build that fails keeps the
   old workers serving. */
START_TEST(api_source_reloads_generations)
{
    counting_source *source = calloc(1, sizeof(*source));
    ck_assert_ptr_nonnull(source);
    source->workers = 2;
    source->fail_load = 3;
    source->fail_build = 4;
    csgi_server_options options = api_options(0); /* load sets 2 */
    csgi_server *server = NULL;
    csgi_load_error error;
    ck_assert_int_eq(csgi_server_new_source(&server, &counting_type, source, &options, &error), 0);
    served s;
    api_master_start(&s, server);
    wait_accepting(&s, 2);
    reply r = get(s.port, "/");
    ck_assert_str_eq(r.message, "gen1");
    ck_assert_int_eq(r.built_by, r.pid); /* built after the fork */

    kill(s.pid, SIGHUP);
    get_until(s.port, "/", "gen2", 5000);
    kill(s.pid, SIGHUP);
    assert_waited_log(&s, "reload failed: generation 3 refused to load", 1, 3000);
    kill(s.pid, SIGHUP);
    assert_waited_log(&s,
                      "generation 4 refused to build; the 2 workers of generation 2 keep "
                      "serving",
                      1, 3000);
    ck_assert_str_eq(get(s.port, "/").message, "gen2");
    kill(s.pid, SIGHUP);
    get_until(s.port, "/", "gen5", 5000);
    serve_stop(&s, 3000);
    free(source);
}
END_TEST

/* USR2 works for a host program of the API too: it runs again, adopts
   the listeners it is given (csgi_server_listen_systemd) and builds its
   application anew; the old master retires. */
START_TEST(api_host_upgrades_on_usr2)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    const char *host = getenv("CSGI_WORKERS_HOST");
    ck_assert_msg(host != NULL, "CSGI_WORKERS_HOST is not set");
    char pidfile[4096], message_file[4096];
    snprintf(pidfile, sizeof(pidfile), "%s", test_tmp_path("host.pid"));
    snprintf(message_file, sizeof(message_file), "%s", test_tmp_path("message.txt"));
    test_write_file("message.txt", "one\n");
    served s;
    if (fork_logged(&s, "out.txt", "log.txt") == 0) {
        execl(host, host, message_file, pidfile, (char *)NULL);
        _exit(127);
    }
    read_port(&s);
    wait_accepting(&s, 2);
    reply r = get(s.port, "/");
    ck_assert_str_eq(r.message, "one");
    ck_assert_int_eq(r.built_by, s.pid);
    client_loop c;
    client_loop_start(&c, s.port);
    test_write_file("message.txt", "two\n");
    kill(s.pid, SIGUSR2);
    assert_waited_log(&s, "upgrade: the new master", 1, 8000);
    follow_new_master(&s, pidfile);
    r = get_until(s.port, "/", "two", 3000);
    ck_assert_int_eq(r.built_by, s.pid);
    sleep_ms(200);
    client_loop_stop(&c);
    ck_assert_msg(c.failed == 0 && c.refused == 0 && c.ok > 2, "%d failed, %d refused, %d ok",
                  c.failed, c.refused, c.ok);
    serve_stop(&s, 5000);
}
END_TEST

/* A source without workers builds at once and serves in this process; a
   load or build that fails fails csgi_server_new_source with its error. */
static void *run_server(void *arg)
{
    csgi_server_run(arg);
    return NULL;
}

START_TEST(api_source_without_workers_serves_here)
{
    counting_source source = {0, 0, 1, 0};
    csgi_server_options options = api_options(0);
    csgi_server *server = NULL;
    csgi_load_error error;
    ck_assert_int_eq(csgi_server_new_source(&server, &counting_type, &source, &options, &error),
                     CSGI_EINVAL);
    ck_assert_ptr_null(server);
    ck_assert_str_eq(error.text, "generation 1 refused to load");
    source.fail_build = 2;
    ck_assert_int_eq(csgi_server_new_source(&server, &counting_type, &source, &options, &error),
                     CSGI_EINVAL);
    ck_assert_str_eq(error.text, "generation 2 refused to build");

    ck_assert_int_eq(csgi_server_new_source(&server, &counting_type, &source, &options, &error), 0);
    ck_assert_int_eq(csgi_server_listen(server, "127.0.0.1:0"), 0);
    csgi_server_stats stats = CSGI_SERVER_STATS_INIT;
    ck_assert_int_eq(csgi_server_stats_get(&stats), CSGI_ESTATE); /* not serving yet */
    ck_assert_int_eq(csgi_server_start(server), 0);
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, run_server, server), 0);
    reply r = get(csgi_server_port(server, 0), "/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.message, "gen3");
    ck_assert_int_eq(r.pid, getpid());

    /* Without workers the figures are this process's, exact: three
       requests, each on a connection of its own, all closed by now. */
    ck_assert_int_eq(get(csgi_server_port(server, 0), "/").status, 200);
    ck_assert_int_eq(get(csgi_server_port(server, 0), "/").status, 200);
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(csgi_server_stats_get(&stats), 0);
        if (stats.connections == 0)
            break;
        sleep_ms(5);
    }
    ck_assert_uint_eq(stats.requests, 3);
    ck_assert_uint_eq(stats.process_requests, 3);
    ck_assert_uint_eq(stats.connections, 0);
    ck_assert_uint_eq(stats.workers, 0);
    ck_assert_uint_eq(stats.threads, 1);
    ck_assert(stats.started > 0 && stats.uptime >= 0 && stats.uptime < 60);
    stats.version = 99;
    ck_assert_int_eq(csgi_server_stats_get(&stats), CSGI_EINVAL);
    ck_assert_int_eq(csgi_server_stats_get(NULL), CSGI_EINVAL);

    /* A connection held open counts while it is open (with part of a
       head: the listener defers a silent one's accept, TCP_DEFER_ACCEPT). */
    int refused = 0;
    int held = connect_to(csgi_server_port(server, 0), &refused);
    ck_assert_int_ge(held, 0);
    ck_assert_int_eq(send(held, "GET / HTTP/1.1\r\n", 16, MSG_NOSIGNAL), 16);
    stats.version = CSGI_SERVER_STATS_VERSION;
    for (int i = 0; i < 200 && stats.connections != 1; i++) {
        sleep_ms(5);
        ck_assert_int_eq(csgi_server_stats_get(&stats), 0);
    }
    ck_assert_uint_eq(stats.connections, 1);
    close(held);

    csgi_server_stop(server, 1000);
    pthread_join(thread, NULL);
    csgi_server_free(server);
    ck_assert_int_eq(csgi_server_stats_get(&stats), CSGI_ESTATE); /* freed */
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("workers");
    TCase *serve = tcase_create("serve");
    tcase_set_timeout(serve, 30);
    tcase_add_test(serve, workers_answer_from_their_own_processes);
    tcase_add_test(serve, killed_worker_is_replaced_without_refusals);
    tcase_add_test(serve, stats_count_every_worker);
    tcase_add_test(serve, workers_dying_at_start_stop_the_master);
    tcase_add_test(serve, build_failure_at_start_names_file_and_line);
    tcase_add_test(serve, term_lets_requests_in_flight_finish);
    tcase_add_test(serve, quit_stops_at_once);
    tcase_add_test(serve, workers_zero_is_one_process_and_option_overrides);
    tcase_add_test(serve, threads_and_unix_socket_outlive_workers);
    tcase_add_test(serve, unix_mode_umask_chdir_and_pidfile);
    tcase_add_test(serve, socket_activation_by_hand);
    tcase_add_test(serve, user_nobody_serves_after_binding);
    tcase_add_test(serve, root_without_user_is_refused);
    tcase_add_test(serve, socket_activation_by_systemd_socket_activate);
    tcase_add_test(serve, workers_share_the_access_log_and_reopen_it_on_usr1);
    tcase_add_test(serve, error_log_takes_standard_error_and_reopens_on_usr1);
    suite_add_tcase(suite, serve);
    TCase *reload = tcase_create("reload");
    tcase_set_timeout(reload, 30);
    tcase_add_test(reload, hup_reloads_without_failed_requests);
    tcase_add_test(reload, hup_with_broken_file_keeps_old_workers);
    tcase_add_test(reload, ttin_and_ttou_change_the_count);
    tcase_add_test(reload, max_requests_recycles_workers);
    tcase_add_test(reload, preload_builds_in_the_master);
    tcase_add_test(reload, timeout_kills_a_stuck_worker);
    tcase_add_test(reload, usr2_upgrades_in_place);
    suite_add_tcase(suite, reload);

    TCase *tls = tcase_create("tls");
    tcase_set_timeout(tls, 60);
    tcase_add_test(tls, tls_workers_serve_https_and_hup_reads_certificates);
    tcase_add_test(tls, tls_bad_files_named_at_their_line);
    tcase_add_test(tls, tls_listen_https_on_the_command_line);
    tcase_add_test(tls, tls_usr2_upgrade_keeps_https);
    suite_add_tcase(suite, tls);
    TCase *api = tcase_create("api");
    tcase_set_timeout(api, 30);
    tcase_add_test(api, api_workers_serve_a_built_application);
    tcase_add_test(api, api_source_reloads_generations);
    tcase_add_test(api, api_source_without_workers_serves_here);
    tcase_add_test(api, api_host_upgrades_on_usr2);
    suite_add_tcase(suite, api);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
