// SCM_RIGHTS descriptor passing for the takeover handshake
// (Sources/flowgated/Takeover/). In C because CMSG_FIRSTHDR, CMSG_DATA and
// CMSG_SPACE are macros Swift cannot call.
#include "CFlowgateSys.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

long fg_send_with_fds(int sock, const void *buf, unsigned long len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > FG_MAX_FDS) { errno = EINVAL; return -1; }
    union { char bytes[CMSG_SPACE(sizeof(int) * FG_MAX_FDS)]; struct cmsghdr align; } control;
    struct iovec iov = { (void *)buf, len };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.bytes;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    return (long)sendmsg(sock, &msg, MSG_NOSIGNAL);
}

long fg_recv_with_fds(int sock, void *buf, unsigned long len, int *fds, int maxfds, int *nfds, int *truncated) {
    union { char bytes[CMSG_SPACE(sizeof(int) * FG_MAX_FDS)]; struct cmsghdr align; } control;
    struct iovec iov = { buf, len };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    *nfds = 0;
    *truncated = 0;
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *received = (int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            // A received descriptor is open in this process: keep it or close it, never leak it.
            if (*nfds < maxfds) fds[(*nfds)++] = received[i]; else { close(received[i]); *truncated = 1; }
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) *truncated = 1;
    return (long)n;
}
