// The takeover state blob's container (docs/architecture.md §16.2): a memfd
// sealed so that the receiving process can trust what it maps or reads will
// not change under it. In C because memfd_create, MFD_ALLOW_SEALING and the
// F_ADD_SEALS constants need _GNU_SOURCE, which Swift's Glibc module hides.
#include "CFlowgateSys.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

#define FG_ALL_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

int fg_sealed_memfd(const char *name, const void *buf, unsigned long len) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    const char *p = buf;
    unsigned long left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) { if (errno == EINTR) continue; int e = errno; close(fd); errno = e; return -1; }
        p += n; left -= (unsigned long)n;
    }
    if (fcntl(fd, F_ADD_SEALS, FG_ALL_SEALS) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno; close(fd); errno = e; return -1;
    }
    return fd;
}

int fg_is_fully_sealed(int fd) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) return -1;
    return (seals & FG_ALL_SEALS) == FG_ALL_SEALS ? 1 : 0;
}
