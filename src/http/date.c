/* The Date header line, formatted once per second per loop (RFC 9110 5.6.7). */
#include "http/private.h"

#include <stdio.h>
#include <time.h>

void csgi_http__date_refresh(csgi_http__loop *loop)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct timeval now;
    event_base_gettimeofday_cached(loop->base, &now);
    if (now.tv_sec == loop->date_second && loop->date_line_len)
        return;
    loop->date_second = now.tv_sec;
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(loop->date_line, sizeof(loop->date_line),
                     "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    loop->date_line_len = n > 0 && (size_t)n < sizeof(loop->date_line) ? (size_t)n : 0;
}
