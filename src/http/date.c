/* The Date header line, formatted once per second per loop (RFC 9110 5.6.7). */
#include "http/private.h"

#include "common/date.h"

#include <string.h>

void csgi_http__date_refresh(csgi_http__loop *loop)
{
    struct timeval now;
    event_base_gettimeofday_cached(loop->base, &now);
    if (now.tv_sec == loop->date_second && loop->date_line_len)
        return;
    loop->date_second = now.tv_sec;
    _Static_assert(sizeof(loop->date_line) >= 6 + CSGI_DATE__LEN + 2, "Date line buffer");
    memcpy(loop->date_line, "Date: ", 6);
    if (csgi_date__format(now.tv_sec, loop->date_line + 6) != 0) {
        loop->date_line_len = 0;
        return;
    }
    memcpy(loop->date_line + 6 + CSGI_DATE__LEN, "\r\n", 2);
    loop->date_line_len = 6 + CSGI_DATE__LEN + 2;
}
