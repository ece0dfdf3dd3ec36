/* c_locale.h — the "C" numeric locale, for numbers written and read with a
 * decimal point whatever the caller's locale (internal). Includers define
 * _GNU_SOURCE before any #include (for locale_t and strtod_l). */
#ifndef BP_UTIL_C_LOCALE_H
#define BP_UTIL_C_LOCALE_H

#include <locale.h>

#include "backprop.h"

/* A new locale object with the "C" LC_NUMERIC category, for strtod_l or
 * uselocale; release it with freelocale. On failure BP_ERR_OUT_OF_MEMORY
 * with a message that begins with `who`. */
#ifdef __cplusplus
extern "C" {
#endif

bp_status bp_c_locale_new(const char *who, locale_t *out);

#ifdef __cplusplus
}
#endif

#endif
