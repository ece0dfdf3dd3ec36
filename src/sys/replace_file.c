/*
 * replace_file.c — replacing a file whole or not at all (bp_file_replace_*).
 *
 * The new contents go to a temporary file created with O_CREAT|O_EXCL|
 * O_NOFOLLOW in the target's own directory, named "<name>.tmp-<pid>-<hex>"
 * (unique, and never an existing file or a planted symlink). Commit flushes
 * and fsyncs it, renames it over the target (atomic within a directory)
 * and fsyncs the directory. Every error path closes and removes the
 * temporary file.
 *
 * Rules (documented in backprop.h):
 *  - a new file is created with mode 0666 minus the umask (the kernel
 *    applies it: no umask() call, which would race other threads); an
 *    existing file keeps its permission bits;
 *  - a symbolic link is written through: its target is replaced and the
 *    link stays; a dangling link is refused;
 *  - a target that exists and is not a regular file (a device, FIFO,
 *    socket, directory) is refused: only regular files are replaced;
 *  - temporary files left by processes that no longer run (SIGKILL, power
 *    loss) are removed by the next replacement of the same file, and only
 *    those: a name of exactly this form, a regular file of this user,
 *    whose lock is free and whose process is gone. A writer holds an
 *    exclusive flock on its temporary file from before the file has a
 *    name (O_TMPFILE, then linked; where the file system lacks O_TMPFILE,
 *    from just after creating it) until it is renamed into place, and the
 *    kernel drops the lock only when the writer's process ends — so a
 *    writer in another PID namespace, or on another host of a file system
 *    with shared locks (NFS), is never taken for a dead one. A user's file
 *    that merely looks similar ("m.st.tmp-999999-notes.txt") is left.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/error.h"
#include "backprop_file.h"

#define TMP_TAG ".tmp-"
#define BUF_SIZE ((size_t)1 << 16)

struct bp_file_replace {
    char *path; /* the target as given, for messages */
    char *dir;  /* its directory */
    char *base; /* its name in dir (after following a symlink) */
    char *tmp;  /* the temporary file's name in dir */
    int dir_fd, fd;
    int failed; /* a write failed: commit refuses */
    bp_status status;
    unsigned char *buf;
    size_t used;
};

/* Splits path into directory and name (the name may not be empty). */
static bp_status split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    size_t dlen = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    *dir = malloc(dlen + 1);
    *base = strdup(b);
    if (*dir == NULL || *base == NULL) {
        free(*dir);
        free(*base);
        *dir = *base = NULL;
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", path);
    }
    if (slash == NULL)
        memcpy(*dir, ".", 2);
    else if (slash == path)
        memcpy(*dir, "/", 2);
    else {
        memcpy(*dir, path, dlen);
        (*dir)[dlen] = '\0';
    }
    return BP_OK;
}

/* The file to replace: path itself, or the target of the symlink it is.
 * *resolved is NULL when path is not a symlink. Checks the target's type. */
static bp_status resolve_target(const char *fn, const char *path, char **resolved, struct stat *sb,
                                int *exists)
{
    *resolved = NULL;
    *exists = 0;
    if (path[0] == '\0')
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: path is empty", fn);
    size_t len = strlen(path);
    if (path[len - 1] == '/')
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: '%s' names a directory, not a file", fn, path);
    if (lstat(path, sb) != 0) {
        if (errno == ENOENT)
            return BP_OK;
        return bp_fail(BP_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    if (S_ISLNK(sb->st_mode)) {
        errno = 0;
        char *r = realpath(path, NULL);
        if (r == NULL) {
            if (errno == ENOMEM)
                return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", path);
            return bp_fail(BP_ERR_IO,
                           "cannot write '%s': it is a symbolic link whose target cannot be "
                           "reached (%s); backprop writes through a link only to an existing "
                           "file",
                           path, strerror(errno));
        }
        if (stat(r, sb) != 0) {
            free(r);
            return bp_fail(BP_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        }
        *resolved = r;
    }
    if (!S_ISREG(sb->st_mode)) {
        free(*resolved);
        *resolved = NULL;
        return bp_fail(BP_ERR_IO,
                       "cannot write '%s': it is %s, not a regular file; backprop replaces only "
                       "regular files",
                       path,
                       S_ISDIR(sb->st_mode)    ? "a directory"
                       : S_ISFIFO(sb->st_mode) ? "a FIFO"
                       : S_ISCHR(sb->st_mode)  ? "a character device"
                       : S_ISBLK(sb->st_mode)  ? "a block device"
                       : S_ISSOCK(sb->st_mode) ? "a socket"
                                               : "a special file");
    }
    *exists = 1;
    return BP_OK;
}

/* The longest temporary name beside a file called base. */
static size_t tmp_name_len(const char *base)
{
    return strlen(base) + sizeof TMP_TAG - 1 + 10 + 1 + 16; /* pid, '-', hex */
}

static bp_status check_name(const char *path, const char *dir, const char *base)
{
    long max = pathconf(dir, _PC_NAME_MAX);
    if (max <= 0)
        max = NAME_MAX;
    if (tmp_name_len(base) > (size_t)max)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "cannot write '%s': the name is %zu bytes, too long for a temporary file "
                       "beside it (at most %zu bytes here)",
                       path, strlen(base), (size_t)max - (tmp_name_len(base) - strlen(base)));
    return BP_OK;
}

bp_status bp_file_replace_check(const char *path)
{
    const char *fn = "bp_file_replace_check";
    BP_CHECK_PTR(fn, path);
    struct stat sb;
    char *resolved = NULL;
    int exists = 0;
    BP_TRY(resolve_target(fn, path, &resolved, &sb, &exists));
    char *dir = NULL, *base = NULL;
    bp_status st = split_path(resolved ? resolved : path, &dir, &base);
    if (st == BP_OK) {
        struct stat ds;
        if (stat(dir, &ds) != 0 || !S_ISDIR(ds.st_mode))
            st = bp_fail(BP_ERR_IO, "cannot write '%s': the directory '%s' does not exist", path,
                         dir);
        else if (access(dir, W_OK | X_OK) != 0)
            st = bp_fail(BP_ERR_IO, "cannot write '%s': directory '%s': %s", path, dir,
                         strerror(errno));
        else
            st = check_name(path, dir, base);
    }
    free(resolved);
    free(dir);
    free(base);
    return st;
}

/* The pid in n when n is exactly "<base>.tmp-<pid>-<16 hex digits>" (the
 * names bp_file_replace_begin makes), else 0. */
static long temp_name_pid(const char *n, const char *base)
{
    size_t blen = strlen(base), tlen = sizeof TMP_TAG - 1;
    if (strncmp(n, base, blen) != 0 || strncmp(n + blen, TMP_TAG, tlen) != 0)
        return 0;
    const char *p = n + blen + tlen;
    long pid = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
        pid = pid * 10 + (*p - '0');
    if (digits == 0 || *p != '-')
        return 0;
    p++;
    for (int i = 0; i < 16; i++, p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return *p == '\0' && pid <= INT_MAX ? pid : 0;
}

/* Whether the temporary file n (of process pid) is provably stale: a
 * regular file of this user with one link, whose writer's lock is free
 * and whose process does not run. Removes it then. */
static void remove_if_stale(int dir_fd, const char *n, long pid)
{
    if (pid == (long)getpid() || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
        return;
    int fd = openat(dir_fd, n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() && sb.st_nlink == 1 &&
        flock(fd, LOCK_EX | LOCK_NB) == 0)
        (void)unlinkat(dir_fd, n, 0);
    close(fd); /* and the lock with it */
}

/* Removes the temporary files of base left by writers that no longer run. */
static void remove_stale(int dir_fd, const char *base)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long pid = temp_name_pid(e->d_name, base);
        if (pid > 0)
            remove_if_stale(dir_fd, e->d_name, pid);
    }
    closedir(d);
}

/* A new temporary file named name in dir_fd, locked (flock) before anyone
 * can see it: an unnamed O_TMPFILE file, locked, then linked under name;
 * where the file system has no O_TMPFILE, created with O_EXCL and locked
 * at once. Returns the descriptor, or -1 with errno (EEXIST: the name is
 * taken, try another). */
static int create_locked_temp(int dir_fd, const char *name)
{
    int fd;
#ifdef O_TMPFILE
    fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (fd >= 0) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (flock(fd, LOCK_EX) == 0 && linkat(AT_FDCWD, proc, dir_fd, name, AT_SYMLINK_FOLLOW) == 0)
            return fd;
        int e = errno;
        close(fd);
        if (e != ENOENT) { /* ENOENT: no /proc; create it by name below */
            errno = e;
            return -1;
        }
    } else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
        return -1;
    }
#endif
    /* 0666: the kernel takes the umask off. */
    fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
        int e = errno;
        close(fd);
        (void)unlinkat(dir_fd, name, 0);
        errno = e;
        return -1;
    }
    return fd;
}

bp_status bp_file_replace_begin(const char *path, bp_file_replace **out)
{
    const char *fn = "bp_file_replace_begin";
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    BP_CHECK_PTR(fn, path);
    struct stat sb;
    char *resolved = NULL;
    int exists = 0;
    BP_TRY(resolve_target(fn, path, &resolved, &sb, &exists));
    bp_file_replace *r = calloc(1, sizeof *r);
    if (r == NULL) {
        free(resolved);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    r->dir_fd = r->fd = -1;
    bp_status st = BP_OK;
    r->path = strdup(path);
    r->buf = malloc(BUF_SIZE);
    if (r->path == NULL || r->buf == NULL)
        st = bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    if (st == BP_OK)
        st = split_path(resolved ? resolved : path, &r->dir, &r->base);
    free(resolved);
    if (st == BP_OK)
        st = check_name(path, r->dir, r->base);
    if (st == BP_OK) {
        r->dir_fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (r->dir_fd < 0)
            st = bp_fail(BP_ERR_IO, "cannot write '%s': directory '%s': %s", path, r->dir,
                         strerror(errno));
    }
    if (st == BP_OK) {
        remove_stale(r->dir_fd, r->base);
        r->tmp = malloc(tmp_name_len(r->base) + 1);
        if (r->tmp == NULL)
            st = bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    if (st == BP_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                        (uint64_t)(uintptr_t)r ^ ((uint64_t)getpid() << 40);
        for (int attempt = 0; attempt < 100; attempt++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            snprintf(r->tmp, tmp_name_len(r->base) + 1, "%s" TMP_TAG "%ld-%016llx", r->base,
                     (long)getpid(), (unsigned long long)(seed ^ (seed >> 29)));
            r->fd = create_locked_temp(r->dir_fd, r->tmp);
            if (r->fd >= 0 || errno != EEXIST)
                break;
        }
        if (r->fd < 0) {
            st = bp_fail(errno == ENOMEM ? BP_ERR_OUT_OF_MEMORY : BP_ERR_IO,
                         "cannot create a temporary file beside '%s': %s", path, strerror(errno));
            free(r->tmp);
            r->tmp = NULL; /* nothing to remove */
        }
    }
    /* A replaced file keeps its owner and group where this process may set
     * them (root; best effort: chown first, as it clears set-id bits) and
     * its permission bits. */
    if (st == BP_OK && exists)
        (void)!fchown(r->fd, sb.st_uid, sb.st_gid);
    if (st == BP_OK && exists && fchmod(r->fd, sb.st_mode & 07777) != 0)
        st = bp_fail(BP_ERR_IO, "cannot set the mode of a temporary file beside '%s': %s", path,
                     strerror(errno));
    if (st != BP_OK) {
        bp_file_replace_abort(r);
        return st;
    }
    *out = r;
    return BP_OK;
}

static int write_fd(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static bp_status fail_write(bp_file_replace *r)
{
    if (!r->failed) {
        r->failed = 1;
        r->status = bp_fail(BP_ERR_IO, "cannot write '%s': %s", r->path, strerror(errno));
    }
    return r->status;
}

static bp_status flush_buf(bp_file_replace *r)
{
    if (r->used > 0 && write_fd(r->fd, r->buf, r->used) != 0)
        return fail_write(r);
    r->used = 0;
    return BP_OK;
}

bp_status bp_file_replace_write(bp_file_replace *r, const void *data, size_t bytes)
{
    BP_CHECK_PTR("bp_file_replace_write", r);
    if (bytes > 0)
        BP_CHECK_PTR("bp_file_replace_write", data);
    if (r->failed)
        return bp_fail(r->status, "cannot write '%s': an earlier write failed", r->path);
    if (r->used + bytes <= BUF_SIZE) {
        memcpy(r->buf + r->used, data, bytes);
        r->used += bytes;
        return BP_OK;
    }
    BP_TRY(flush_buf(r));
    if (bytes <= BUF_SIZE) {
        memcpy(r->buf, data, bytes);
        r->used = bytes;
        return BP_OK;
    }
    if (write_fd(r->fd, data, bytes) != 0)
        return fail_write(r);
    return BP_OK;
}

bp_status bp_file_replace_printf(bp_file_replace *r, const char *fmt, ...)
{
    BP_CHECK_PTR("bp_file_replace_printf", r);
    BP_CHECK_PTR("bp_file_replace_printf", fmt);
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "bp_file_replace_printf: bad format '%s'", fmt);
    if ((size_t)n < sizeof small)
        return bp_file_replace_write(r, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory for %d bytes of text", r->path, n);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bp_status st = bp_file_replace_write(r, big, (size_t)n);
    free(big);
    return st;
}

bp_status bp_file_replace_flush(bp_file_replace *r)
{
    BP_CHECK_PTR("bp_file_replace_flush", r);
    if (r->failed)
        return bp_fail(r->status, "cannot write '%s': an earlier write failed", r->path);
    return flush_buf(r);
}

bp_status bp_file_replace_commit(bp_file_replace *r)
{
    BP_CHECK_PTR("bp_file_replace_commit", r);
    bp_status st = BP_OK;
    if (r->failed)
        st = bp_fail(r->status, "cannot write '%s': an earlier write failed", r->path);
    if (st == BP_OK)
        st = flush_buf(r);
    if (st == BP_OK && fsync(r->fd) != 0)
        st = fail_write(r);
    /* Renamed while still open, so the lock (see remove_stale) is held
     * until the file is in place. */
    if (st == BP_OK && renameat(r->dir_fd, r->tmp, r->dir_fd, r->base) != 0)
        st = bp_fail(BP_ERR_IO, "cannot replace '%s': %s", r->path, strerror(errno));
    if (st != BP_OK) {
        bp_file_replace_abort(r);
        return st;
    }
    free(r->tmp);
    r->tmp = NULL; /* in place: nothing to remove */
    int fd = r->fd;
    r->fd = -1;
    if (close(fd) != 0) /* after fsync: an error here is unusual, but reported */
        st = fail_write(r);
    /* The rename made durable. Best effort: the new file is in place. */
    (void)fsync(r->dir_fd);
    bp_file_replace_abort(r); /* closes and frees; nothing left to remove */
    return st;
}

void bp_file_replace_abort(bp_file_replace *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->tmp != NULL && r->dir_fd >= 0)
        (void)unlinkat(r->dir_fd, r->tmp, 0);
    if (r->dir_fd >= 0)
        close(r->dir_fd);
    free(r->path);
    free(r->dir);
    free(r->base);
    free(r->tmp);
    free(r->buf);
    free(r);
}
