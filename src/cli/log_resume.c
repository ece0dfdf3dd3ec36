/* log_resume.c — --log on --resume (see log_resume.h). It used to append
 * the whole old file: a log that had run further than the checkpoint gave
 * epochs 1,2,3,4,3,4, and an unrelated CSV kept its header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "log_resume.h"
#include "messages.h"

/* Copies the rows of epochs last+1..epochs_done in order; returns how many
 * it left out, or -1 (printed) on an error. */
static long copy_rows(FILE *f, bp_file_replace *log, long epochs_done)
{
    char *line = NULL;
    size_t cap = 0;
    long last = 0, dropped = 0;
    while (getline(&line, &cap, f) > 0) {
        char *end = NULL;
        long epoch = strtol(line, &end, 10);
        if (end == line || *end != ',' || epoch <= last || epoch > epochs_done ||
            line[strlen(line) - 1] != '\n') {
            dropped++;
            continue;
        }
        if (bp_file_replace_write(log, line, strlen(line)) != BP_OK) {
            free(line);
            return cli_error("--log: %s", bp_last_error());
        }
        last = epoch;
    }
    free(line);
    return ferror(f) ? -2 : dropped;
}

int cli_log_resume(const char *path, bp_file_replace *log, const char *header, long epochs_done,
                   int quiet)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    char *first = NULL;
    size_t cap = 0;
    int ours = getline(&first, &cap, f) > 0 && strcmp(first, header) == 0;
    free(first);
    if (!ours) {
        fclose(f);
        cli_warning("--log: '%s' does not start with this command's log header, so it is "
                    "replaced, not continued",
                    path);
        return 0;
    }
    long dropped = -1;
    if (bp_file_replace_write(log, header, strlen(header)) == BP_OK)
        dropped = copy_rows(f, log, epochs_done);
    else
        cli_error("--log: %s", bp_last_error());
    fclose(f);
    if (dropped == -2)
        return cli_error("--log: cannot read '%s'", path);
    if (dropped < 0)
        return -1;
    if (dropped > 0)
        cli_note(quiet,
                 "--log: %ld row%s of '%s' left out: the checkpoint holds epochs 1 to %ld, and "
                 "later ones are trained again",
                 dropped, dropped == 1 ? "" : "s", path, epochs_done);
    return 1;
}
