/* log_resume.h — --log on --resume: the interrupted run's rows go on in
 * the new log, and only those (issue 21, item 7). */
#ifndef BP_CLI_LOG_RESUME_H
#define BP_CLI_LOG_RESUME_H

#include "backprop_file.h"

/* Writes to log the header and the rows of the old log at path for epochs
 * 1..epochs_done (the checkpoint's), in increasing order; rows of later
 * epochs (trained again now) or repeated ones are left out and counted in
 * a note (unless quiet). An old file that does not start with header is
 * not this command's log: it is replaced, and a warning says so. Returns 1 when the
 * header was written, 0 when there is no old log (the caller writes the
 * header), -1 (printed) on an error. */
int cli_log_resume(const char *path, bp_file_replace *log, const char *header, long epochs_done,
                   int quiet);

#endif
