/* The one logger and its line format (see log.h). */
#include "common/log.h"

#include "common/date.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char *level_name(int level)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    return level >= CSGI_LOG__ERROR && level <= CSGI_LOG__DEBUG ? names[level] : "log";
}

void csgi_log__stderr(int level, const char *message, void *userdata)
{
    (void)userdata;
    char stamp[CSGI_DATE__STAMP_SIZE];
    csgi_date__stamp(time(NULL), stamp);
    fprintf(stderr, "%s csgi[%ld] %s: %s\n", stamp, (long)getpid(), level_name(level), message);
}

void csgi_log__vwrite(csgi_log__fn log, void *userdata, int threshold, int level,
                      const char *format, va_list args)
{
    if (level > threshold)
        return;
    char message[1024];
    vsnprintf(message, sizeof(message), format, args);
    (log ? log : csgi_log__stderr)(level, message, userdata);
}

void csgi_log__write(csgi_log__fn log, void *userdata, int threshold, int level, const char *format,
                     ...)
{
    va_list args;
    va_start(args, format);
    csgi_log__vwrite(log, userdata, threshold, level, format, args);
    va_end(args);
}
