/*
 * config_probe.c — what the command asks the library for (test-only, never
 * in the library). Linked into backprop_faulty with
 * -Wl,--wrap=bp_network_create: when BP_PROBE_CONFIG names a file, every
 * network created appends "backend B threads T" to it (the config as it
 * reached the library), then is created as usual. test_cli_user reads it
 * to see that a flag such as --threads reaches the network's config.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backprop.h"

bp_status __real_bp_network_create(const bp_network_config *cfg, bp_network **out);
bp_status __wrap_bp_network_create(const bp_network_config *cfg, bp_network **out);

bp_status __wrap_bp_network_create(const bp_network_config *cfg, bp_network **out)
{
    const char *path = getenv("BP_PROBE_CONFIG");
    FILE *f = path != NULL && cfg != NULL ? fopen(path, "a") : NULL;
    if (f != NULL) {
        fprintf(f, "backend %d threads %d\n", (int)cfg->backend, cfg->threads);
        fclose(f);
    }
    return __real_bp_network_create(cfg, out);
}
