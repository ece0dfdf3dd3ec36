/* gpu_flags.c — the command's GPU options (see gpu_flags.h). */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "gpu_flags.h"

int cli_parse_math_mode(const char *option, const char *text, bp_math_mode *out)
{
    if (bp_math_mode_parse(text, out) != BP_OK)
        return cli_error("%s: %s", option, bp_last_error());
    return 0;
}

void cli_describe_no_gpu(char *why, size_t size)
{
    why[0] = '\0';
    bp_device_info info;
    if (bp_cuda_device_info(0, &info) == BP_OK)
        return;
    const char *message = bp_last_error();
    const char *colon = strstr(message, "no CUDA device: ");
    snprintf(why, size, "%s", colon ? colon + strlen("no CUDA device: ") : message);
    /* The first clause: the note is one short line on every CPU run; the
     * whole story comes with --device cuda, which fails with it. */
    size_t cut = strcspn(why, "(;");
    while (cut > 0 && why[cut - 1] == ' ')
        cut--;
    if (cut > 0)
        why[cut] = '\0';
}
