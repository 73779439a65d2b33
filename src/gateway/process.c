/*
 * What a serving process does to itself (server_private.h): the umask and
 * working directory of the options, the owner and mode of the Unix socket
 * files it binds, and its pid file. The server (server.c) calls these at
 * the moments its options document; they are system calls on the whole
 * process, kept apart from the server object's own logic.
 */
#include "gateway/server_private.h"

#include <csgi/server.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int csgi_server__errno_err(int e)
{
    switch (e) {
    case ENOMEM: return CSGI_ENOMEM;
    case EACCES:
    case EPERM:
    case EROFS: return CSGI_EACCESS;
    case ENOENT:
    case ENOTDIR: return CSGI_ENOTFOUND;
    default: return CSGI_ESYSTEM;
    }
}

/* A decimal number that is all of text, into *out. */
static int whole_number(const char *text, unsigned long *out)
{
    if (!text[0] || text[0] < '0' || text[0] > '9')
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno || *end)
        return 0;
    *out = value;
    return 1;
}

int csgi_server__user_id(const char *name, uid_t *out, gid_t *group)
{
    unsigned long number = 0;
    struct passwd *entry = NULL;
    errno = 0;
    if (whole_number(name, &number)) {
        *out = (uid_t)number;
        entry = getpwuid(*out);
    } else if ((entry = getpwnam(name)) != NULL) {
        *out = entry->pw_uid;
    } else {
        return CSGI_ENOTFOUND;
    }
    if (group)
        *group = entry ? entry->pw_gid : (gid_t)-1;
    return 0;
}

int csgi_server__group_id(const char *name, gid_t *out)
{
    unsigned long number = 0;
    if (whole_number(name, &number)) {
        *out = (gid_t)number;
        return 0;
    }
    const struct group *entry = getgrnam(name);
    if (!entry)
        return CSGI_ENOTFOUND;
    *out = entry->gr_gid;
    return 0;
}

/* The working directory before the options' chdir changed it ("": it did
   not). */
static char start_dir[PATH_MAX];

const char *csgi_server__start_dir(void)
{
    return start_dir[0] ? start_dir : NULL;
}

int csgi_server__apply_process_options(const csgi_server_options *options, char *why,
                                       size_t why_size)
{
    if (options->umask)
        umask(options->umask == CSGI_SERVER_UMASK_ZERO ? 0 : (mode_t)options->umask);
    /* An upgrade runs the program again from where it was started: its
       arguments may name files relative to that directory. */
    if (options->chdir && options->chdir[0] && !start_dir[0] &&
        !getcwd(start_dir, sizeof(start_dir)))
        start_dir[0] = '\0';
    if (options->chdir && options->chdir[0] && chdir(options->chdir) != 0) {
        int e = errno;
        snprintf(why, why_size, "chdir: %s: %s", options->chdir, strerror(e));
        return csgi_server__errno_err(e);
    }
    return 0;
}

int csgi_server__unix_file(const char *path, unsigned mode, uid_t owner, gid_t group, char *why,
                           size_t why_size)
{
    if (mode && chmod(path, (mode_t)mode) != 0) {
        int e = errno;
        snprintf(why, why_size, "unix_mode: %s: %s", path, strerror(e));
        return csgi_server__errno_err(e);
    }
    if ((owner != (uid_t)-1 || group != (gid_t)-1) && chown(path, owner, group) != 0) {
        int e = errno;
        snprintf(why, why_size, "unix_owner: %s: %s", path, strerror(e));
        return csgi_server__errno_err(e);
    }
    return 0;
}

int csgi_server__drop_privileges(const csgi_server *server, char *why, size_t why_size)
{
    gid_t gid = server->run_gid;
    const char *step = NULL;
    /* Groups first: once the user has changed, they can no longer be. */
    if (server->run_user && initgroups(server->run_user, gid) != 0)
        step = "initgroups";
    else if (!server->run_user && gid != (gid_t)-1 && getuid() == 0 && setgroups(1, &gid) != 0)
        step = "setgroups";
    else if (gid != (gid_t)-1 && setgid(gid) != 0)
        step = "setgid";
    else if (server->run_user && setuid(server->run_uid) != 0)
        step = "setuid";
    if (step) {
        int e = errno;
        snprintf(why, why_size, "cannot serve as user %s group %ld: %s: %s",
                 server->run_user ? server->run_user : "(unchanged)", (long)gid, step, strerror(e));
        return csgi_server__errno_err(e);
    }
    /* Checked: a change that did not take (or that could be undone) is no
       change. */
    int wrong = (gid != (gid_t)-1 && (getgid() != gid || getegid() != gid)) ||
                (server->run_user && (getuid() != server->run_uid || geteuid() != server->run_uid ||
                                      (server->run_uid != 0 && setuid(0) == 0)));
    if (wrong) {
        snprintf(why, why_size, "the user or group did not change (uid %ld, gid %ld)",
                 (long)getuid(), (long)getgid());
        return CSGI_EACCESS;
    }
    return 0;
}

/* The pid a pid file names, or 0 (no file, not a pid). */
static long pid_in(const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return 0;
    long pid = 0;
    if (fscanf(file, "%ld", &pid) != 1 || pid <= 0)
        pid = 0;
    fclose(file);
    return pid;
}

int csgi_server__pidfile_write(const char *path, char *why, size_t why_size)
{
    long pid = pid_in(path);
    /* EPERM: it lives, under another user. */
    if (pid && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
        snprintf(why, why_size, "pidfile: %s names process %ld, which is running", path, pid);
        return CSGI_EADDRINUSE;
    }
    /* Written whole under another name, then renamed: a reader never sees
       half a file, and a stale one is replaced. */
    char temporary[4096];
    int len = snprintf(temporary, sizeof(temporary), "%s.%ld.tmp", path, (long)getpid());
    int fd = len > 0 && (size_t)len < sizeof(temporary)
                 ? open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                 : -1;
    if (fd < 0) {
        int e = len > 0 && (size_t)len < sizeof(temporary) ? errno : ENAMETOOLONG;
        snprintf(why, why_size, "pidfile: %s: %s", path, strerror(e));
        return csgi_server__errno_err(e);
    }
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    int ok = write(fd, text, (size_t)n) == n;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(temporary, path) != 0) {
        int e = errno;
        unlink(temporary);
        snprintf(why, why_size, "pidfile: %s: %s", path, strerror(e));
        return csgi_server__errno_err(e);
    }
    return 0;
}

int csgi_server__error_log_open(const csgi_server *server, char *why, size_t why_size)
{
    if (!server->error_log)
        return 0;
    int fd = open(server->error_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(why, why_size, "error_log: %s: %s", server->error_log, strerror(e));
        return csgi_server__errno_err(e);
    }
    /* The workers, serving as the user, reopen it after a rotation: the
       new file must be theirs to open. */
    if (server->run_user && geteuid() == 0 && fchown(fd, server->run_uid, server->run_gid) != 0) {
        /* they keep writing to the file they have */
    }
    int ok = dup2(fd, STDERR_FILENO) >= 0;
    int e = errno;
    close(fd);
    if (!ok) {
        snprintf(why, why_size, "error_log: %s: dup2: %s", server->error_log, strerror(e));
        return csgi_server__errno_err(e);
    }
    return 0;
}

void csgi_server__pidfile_remove(const char *path)
{
    /* Only a file that is still ours: a new master (an upgrade) may have
       written its own. */
    if (pid_in(path) == (long)getpid())
        unlink(path);
}

/* The first descriptor systemd passes (SD_LISTEN_FDS_START). */
#define SYSTEMD_FIRST_FD 3

int csgi_server__systemd_fds(int *first, int *count)
{
    *first = SYSTEMD_FIRST_FD;
    *count = 0;
    const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
    unsigned long pid = 0, fds = 0;
    /* Meant for another process (the one systemd started, when this is a
       child of it): not ours, and left for it. */
    if (!pid_text || !fds_text || !whole_number(pid_text, &pid) || pid != (unsigned long)getpid())
        return 0;
    int ok = whole_number(fds_text, &fds) && fds <= 1024;
    /* Taken: a process started later (a worker's exec, an upgrade) must
       not take them again. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!ok)
        return CSGI_EINVAL;
    *count = (int)fds;
    return 0;
}

int csgi_server__socket_address(int fd, char *out, size_t size)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage storage;
    } addr;
    memset(&addr, 0, sizeof(addr));
    socklen_t len = sizeof(addr);
    int listening = 0;
    socklen_t flag_len = sizeof(listening);
    if (getsockname(fd, &addr.sa, &len) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &flag_len) != 0 || !listening)
        return CSGI_EINVAL;
    char host[INET6_ADDRSTRLEN] = "";
    if (addr.sa.sa_family == AF_UNIX) {
        snprintf(out, size, "unix:%.*s", (int)sizeof(addr.un.sun_path), addr.un.sun_path);
    } else if (addr.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &addr.in.sin_addr, host, sizeof(host));
        snprintf(out, size, "%s:%u", host, (unsigned)ntohs(addr.in.sin_port));
    } else if (addr.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &addr.in6.sin6_addr, host, sizeof(host));
        snprintf(out, size, "[%s]:%u", host, (unsigned)ntohs(addr.in6.sin6_port));
    } else {
        return CSGI_EINVAL;
    }
    return 0;
}

/* ---- upgrades ---------------------------------------------------------------------- */

/* The descriptor a master that upgraded gave this process, to say that it
   serves: -2 not looked for yet, -1 none (or said already). */
static int upgrade_fd = -2;

int csgi_server__upgrade_fd(void)
{
    if (upgrade_fd != -2)
        return upgrade_fd;
    upgrade_fd = -1;
    const char *text = getenv(CSGI_SERVER__UPGRADE_ENV);
    unsigned long fd = 0;
    if (text && whole_number(text, &fd) && fd > 2 && fd < INT_MAX && fcntl((int)fd, F_GETFD) >= 0) {
        upgrade_fd = (int)fd;
        fcntl(upgrade_fd, F_SETFD, FD_CLOEXEC); /* not for programs this one runs */
    }
    unsetenv(CSGI_SERVER__UPGRADE_ENV);
    return upgrade_fd;
}

void csgi_server__upgrade_ready(void)
{
    int fd = csgi_server__upgrade_fd();
    if (fd < 0)
        return;
    ssize_t n;
    do /* EPIPE when the old master is gone already: nothing to say */
        n = send(fd, "R", 1, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    close(fd);
    upgrade_fd = -1;
}

void csgi_server__upgrade_forget(void)
{
    if (upgrade_fd >= 0)
        close(upgrade_fd);
    upgrade_fd = -1;
}
