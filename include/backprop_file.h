/*
 * backprop_file.h — replacing files safely: the one routine through which
 * libbackprop writes its outputs (models, checkpoints) and the backprop
 * command writes every output (logs, plots). Not needed to train a
 * network; a program that writes files of its own may use it. Part of the
 * same library and ABI as backprop.h (its conventions hold here: statuses,
 * bp_last_error, the SONAME policy).
 */
#ifndef BACKPROP_FILE_H
#define BACKPROP_FILE_H

#include <stddef.h>

#include "backprop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An output file replaced whole or not at all; bp_model_save and the
 * backprop command write every output through it. The contents go to a
 * new temporary file "<name>.tmp-<pid>-<hex>" in the target's directory
 * (created with O_EXCL|O_NOFOLLOW, so never an existing file or a planted
 * link); commit fsyncs it, renames it over the target and fsyncs the
 * directory. Every failure (and abort) closes and removes the temporary
 * file, and the target is left as it was.
 *  - A new file gets mode 0666 minus the umask; a replaced file keeps its
 *    permission bits (and its owner and group where the process may set
 *    them).
 *  - A symbolic link is written through: the file it points to is
 *    replaced and the link stays. A dangling link is refused.
 *  - A target that exists and is not a regular file (device, FIFO, socket,
 *    directory) is refused with BP_ERR_IO: only regular files are replaced.
 *  - Temporary files left beside the target by processes that no longer
 *    run (killed during a write) are removed by the next replacement: only
 *    names of exactly the form above, regular files of this user, whose
 *    writer's process is gone and whose lock is free. A writer holds an
 *    exclusive flock on its temporary file from before it has a name until
 *    it is in place, so a writer in another PID namespace, or on another
 *    host of a file system with shared locks, is never taken for a dead
 *    one.
 * Allocation failures are BP_ERR_OUT_OF_MEMORY, a name too long for the
 * temporary file BP_ERR_INVALID_ARGUMENT, system errors BP_ERR_IO. */
typedef struct bp_file_replace bp_file_replace;

/* Checks, without writing anything, that begin would succeed as far as can
 * be known: the target's type, the directory's existence and permissions,
 * the length of the temporary name. For checking outputs before long work. */
BP_API bp_status bp_file_replace_check(const char *path);
BP_API bp_status bp_file_replace_begin(const char *path, bp_file_replace **out);
/* Writes are buffered; a failed write makes every later call fail. */
BP_API bp_status bp_file_replace_write(bp_file_replace *r, const void *data, size_t bytes);
BP_API bp_status bp_file_replace_printf(bp_file_replace *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Writes the buffered bytes to the temporary file (not to the target). */
BP_API bp_status bp_file_replace_flush(bp_file_replace *r);
/* Puts the new contents in place and frees r, whatever the result; on
 * failure the temporary file is removed and the target is unchanged. */
BP_API bp_status bp_file_replace_commit(bp_file_replace *r);
/* Removes the temporary file and frees r (NULL is allowed). */
BP_API void bp_file_replace_abort(bp_file_replace *r);

#ifdef __cplusplus
}
#endif

#endif /* BACKPROP_FILE_H */
