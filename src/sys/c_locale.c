/* c_locale.c — the "C" numeric locale object. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "api/error.h"
#include "sys/c_locale.h"

bp_status bp_c_locale_new(const char *who, locale_t *out)
{
    errno = 0;
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: cannot create the C locale: %s", who,
                       errno ? strerror(errno) : "out of memory");
    *out = c_locale;
    return BP_OK;
}
