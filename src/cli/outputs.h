/* outputs.h — the command's checks on what it reads and writes: output
 * paths checked before the work (replaceable, and never the same file as
 * an input or another output), finite parameters, the memory a run needs,
 * standard output's final state. Each returns 0, or -1 with a message
 * printed. */
#ifndef BP_CLI_OUTPUTS_H
#define BP_CLI_OUTPUTS_H

#include <stddef.h>

#include "backprop.h"
#include "backprop_file.h"

typedef struct cli_path {
    const char *flag; /* "--save" */
    const char *path; /* NULL: not given */
} cli_path;

/* Every output can be replaced (bp_file_replace_check: directory, type,
 * name length), and no output names the same file as an input or another
 * output — compared by device and inode (for a file not yet there, its
 * directory's device and inode and its name), so "./m", "m" and a link to
 * m are one file. An IDX images input brings its labels file along. */
int cli_check_paths(const cli_path *inputs, size_t n_inputs, const cli_path *outputs,
                    size_t n_outputs);

/* Refuses a network with a NaN or infinite parameter, naming the layer;
 * `what` starts the message ("the trained network", "--model m.st"). */
int cli_check_finite(const bp_network *net, const char *what, const char *advice);

/* An estimate of the memory a network of cfg plus data_bytes of data will
 * take, checked against the machine's physical memory before anything is
 * allocated; the message gives both and the flags to change. */
int cli_check_memory(const bp_network_config *cfg, size_t data_bytes);
/* The same for `networks` networks of cfg at once (compare's two backends
 * and the host copies of their gradients; gradcheck's network and its
 * copies of the parameters and gradients). */
int cli_check_memory_of(const bp_network_config *cfg, int networks, size_t data_bytes);

/* Refuses an allocation of more than the machine's physical memory
 * ("a 1048576 x 1048576 confusion matrix needs 8192.0 GiB ..."). */
int cli_check_bytes(const char *what, double bytes);

/* Flushes standard output; a write error (a full disk, /dev/full, a closed
 * pipe) turns a successful exit status into 1, with a message. */
int cli_finish_stdout(int rc);

#endif
