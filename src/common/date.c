/*
 * HTTP dates (RFC 9110 5.6.7) and log time stamps.
 *
 * Formatting does its own calendar arithmetic (Howard Hinnant's civil
 * date algorithms) rather than gmtime_r(): it is exact for every year 0 to
 * 9999 whatever the width of time_t, and the engine formats its Date
 * header with it once a second per loop.
 */
#include "common/date.h"

#include "common/chartab.h"

#include <csgi/common.h>

#include <stdint.h>
#include <string.h>

static const char weekdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const long_weekdays[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                             "Thursday", "Friday", "Saturday"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a civil date. */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static void civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t mp = (5 * day_of_year + 2) / 153;
    *day = (int)(day_of_year - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = year_of_era + era * 400 + (*month <= 2);
}

static int days_in_month(int64_t year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return days[month - 1];
}

/* ---- Formatting ------------------------------------------------------------ */

static char *put_digits(char *p, int value, int count)
{
    for (int i = count - 1; i >= 0; i--) {
        p[i] = (char)('0' + value % 10);
        value /= 10;
    }
    return p + count;
}

int csgi_date__format(time_t when, char *out)
{
    int64_t seconds = (int64_t)when;
    /* 0000-01-01 .. 9999-12-31 */
    if (seconds < -62167219200LL || seconds > 253402300799LL)
        return CSGI_ERANGE;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int rest = (int)(seconds - days * 86400);
    int64_t year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    int weekday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    char *p = out;
    memcpy(p, weekdays[weekday], 3);
    memcpy(p + 3, ", ", 2);
    p = put_digits(p + 5, day, 2);
    *p++ = ' ';
    memcpy(p, months[month - 1], 3);
    p[3] = ' ';
    p = put_digits(p + 4, (int)year, 4);
    *p++ = ' ';
    p = put_digits(p, rest / 3600, 2);
    *p++ = ':';
    p = put_digits(p, rest / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, rest % 60, 2);
    memcpy(p, " GMT", 4);
    return 0;
}

void csgi_date__stamp(time_t when, char out[CSGI_DATE__STAMP_SIZE])
{
    struct tm tm;
    if (!gmtime_r(&when, &tm) ||
        strftime(out, CSGI_DATE__STAMP_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = '\0';
}

/* ---- Parsing ----------------------------------------------------------------- */

static const char *skip_ws(const char *p)
{
    while (csgi_char__is_ws((unsigned char)*p))
        p++;
    return p;
}

/* Exactly n digits at *p. */
static int digits(const char **p, int n, int *out)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (!csgi_char__is_digit((unsigned char)c))
            return -1;
        value = value * 10 + (c - '0');
    }
    *p += n;
    *out = value;
    return 0;
}

static int expect(const char **p, const char *literal)
{
    size_t len = strlen(literal);
    if (strncmp(*p, literal, len) != 0)
        return -1;
    *p += len;
    return 0;
}

static int month_of(const char **p, int *out)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(*p, months[i], 3) == 0) {
            *p += 3;
            *out = i + 1;
            return 0;
        }
    return -1;
}

/* "HH:MM:SS" */
static int time_of_day(const char **p, int *hour, int *minute, int *second)
{
    if (digits(p, 2, hour) || expect(p, ":") || digits(p, 2, minute) || expect(p, ":") ||
        digits(p, 2, second))
        return -1;
    /* 60 is a leap second (RFC 5322 allows it); it counts as 59 */
    if (*hour > 23 || *minute > 59 || *second > 60)
        return -1;
    if (*second == 60)
        *second = 59;
    return 0;
}

static int current_year(void)
{
    time_t now = time(NULL);
    struct tm tm;
    if (now == (time_t)-1 || !gmtime_r(&now, &tm))
        return 2000;
    return tm.tm_year + 1900;
}

int csgi_date__parse(const char *text, time_t *out)
{
    const char *p = skip_ws(text);
    int weekday = -1;
    for (int i = 0; i < 7 && weekday < 0; i++) {
        size_t long_len = strlen(long_weekdays[i]);
        if (strncmp(p, long_weekdays[i], long_len) == 0 && p[long_len] == ',') {
            p += long_len;
            weekday = i + 10; /* RFC 850 */
        } else if (strncmp(p, weekdays[i], 3) == 0) {
            p += 3;
            weekday = i;
        }
    }
    if (weekday < 0)
        return CSGI_EPARSE;

    int year, month, day, hour, minute, second;
    if (weekday >= 10) {
        /* RFC 850: ", 06-Nov-94 08:49:37 GMT" */
        if (expect(&p, ", ") || digits(&p, 2, &day) || expect(&p, "-") || month_of(&p, &month) ||
            expect(&p, "-") || digits(&p, 2, &year) || expect(&p, " ") ||
            time_of_day(&p, &hour, &minute, &second) || expect(&p, " GMT"))
            return CSGI_EPARSE;
        int now = current_year();
        year += now - now % 100;
        if (year > now + 50)
            year -= 100;
    } else if (*p == ',') {
        /* IMF-fixdate: ", 06 Nov 1994 08:49:37 GMT" */
        if (expect(&p, ", ") || digits(&p, 2, &day) || expect(&p, " ") || month_of(&p, &month) ||
            expect(&p, " ") || digits(&p, 4, &year) || expect(&p, " ") ||
            time_of_day(&p, &hour, &minute, &second) || expect(&p, " GMT"))
            return CSGI_EPARSE;
    } else {
        /* asctime: " Nov  6 08:49:37 1994" */
        if (expect(&p, " ") || month_of(&p, &month) || expect(&p, " "))
            return CSGI_EPARSE;
        if (*p == ' ') {
            p++;
            if (digits(&p, 1, &day))
                return CSGI_EPARSE;
        } else if (digits(&p, 2, &day)) {
            return CSGI_EPARSE;
        }
        if (expect(&p, " ") || time_of_day(&p, &hour, &minute, &second) || expect(&p, " ") ||
            digits(&p, 4, &year))
            return CSGI_EPARSE;
    }
    if (*skip_ws(p) != '\0')
        return CSGI_EPARSE;
    if (day < 1 || day > days_in_month(year, month))
        return CSGI_EPARSE;
    int64_t seconds =
        days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    time_t when = (time_t)seconds;
    if ((int64_t)when != seconds)
        return CSGI_EPARSE; /* a 32-bit time_t */
    *out = when;
    return 0;
}
