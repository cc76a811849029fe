/* failsync: an LD_PRELOAD shim that makes one chosen sync call fail with EIO.
 *
 * Why: a failed fsync/msync cannot be produced by kill -9, and Linux marks the
 * pages clean after reporting it, so the NEXT sync succeeds ("fsyncgate").
 * Tests load this library into a child process (LD_PRELOAD) and drive it with
 * ctypes: failsync_arm(n) makes the n-th sync call from now fail with EIO
 * without syncing; every other call goes to libc. failsync_calls() and
 * failsync_failures() prove the shim sits in the engine's path (Rust's std
 * and memmap2 call these through the dynamically linked libc).
 * Built by tests_py/faultfs.py with `cc -shared -fPIC`. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

static atomic_long calls;     /* sync calls seen */
static atomic_long failures;  /* calls failed on purpose */
static atomic_long countdown; /* fail when this reaches 0 by decrement; <= 0: off */

void failsync_arm(long n) { atomic_store(&countdown, n); }
long failsync_calls(void) { return atomic_load(&calls); }
long failsync_failures(void) { return atomic_load(&failures); }

/* Whether this call is the armed one. */
static int should_fail(void) {
    atomic_fetch_add(&calls, 1);
    long left = atomic_load(&countdown);
    while (left > 0) {
        if (atomic_compare_exchange_weak(&countdown, &left, left - 1)) {
            if (left == 1) {
                atomic_fetch_add(&failures, 1);
                return 1;
            }
            return 0;
        }
    }
    return 0;
}

typedef int (*fd_fn)(int);
typedef int (*msync_fn)(void *, size_t, int);
typedef int (*range_fn)(int, off64_t, off64_t, unsigned int);

/* The next definition of `name` after this library: libc's. */
#define REAL(name, type) \
    static type real_##name; \
    if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

int fsync(int fd) {
    REAL(fsync, fd_fn);
    if (should_fail()) { errno = EIO; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync, fd_fn);
    if (should_fail()) { errno = EIO; return -1; }
    return real_fdatasync(fd);
}

int msync(void *addr, size_t len, int flags) {
    REAL(msync, msync_fn);
    if (should_fail()) { errno = EIO; return -1; }
    return real_msync(addr, len, flags);
}

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
    REAL(sync_file_range, range_fn);
    if (should_fail()) { errno = EIO; return -1; }
    return real_sync_file_range(fd, off, n, flags);
}
