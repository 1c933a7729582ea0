// See include/CFlowgateSys.h. Compiled with _GNU_SOURCE (Package.swift).
#include "CFlowgateSys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

int fg_accept_nonblock(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int fg_pipe_nonblock(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }

int fg_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

ssize_t fg_splice(int fd_in, int fd_out, size_t len) {
    return splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

// Control buffer per slot. A dual-stack (::) socket with both IP_PKTINFO and
// IPV6_RECVPKTINFO on gets TWO cmsgs for an IPv4 datagram (IPV6_PKTINFO with
// the v4-mapped address from ip6_datagram_recv_common_ctl, then IP_PKTINFO
// from ip_cmsg_recv_offset; net/ipv6/udp.c), so room for both: with room for
// one only, the kernel sets MSG_CTRUNC and drops the second.
#define FG_CMSG_SPACE (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)))

struct fg_mmsg_batch {
    unsigned int slots;
    size_t slot_bytes;
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *addrs;
    uint8_t *cmsgs;        // slots * FG_CMSG_SPACE
    uint8_t *send_cmsg_on; // per slot: 1 if a source was set for sending
    uint8_t *buffers;      // slots * slot_bytes
};

fg_mmsg_batch *fg_batch_create(unsigned int slots, size_t slot_bytes) {
    fg_mmsg_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->slots = slots;
    b->slot_bytes = slot_bytes;
    b->msgs = calloc(slots, sizeof *b->msgs);
    b->iovs = calloc(slots, sizeof *b->iovs);
    b->addrs = calloc(slots, sizeof *b->addrs);
    b->cmsgs = calloc(slots, FG_CMSG_SPACE);
    b->send_cmsg_on = calloc(slots, 1);
    b->buffers = malloc(slots * slot_bytes);
    if (!b->msgs || !b->iovs || !b->addrs || !b->cmsgs || !b->send_cmsg_on || !b->buffers) {
        fg_batch_destroy(b);
        return NULL;
    }
    for (unsigned int i = 0; i < slots; i++) {
        b->iovs[i].iov_base = b->buffers + (size_t)i * slot_bytes;
        b->iovs[i].iov_len = slot_bytes;
        b->msgs[i].msg_hdr.msg_iov = &b->iovs[i];
        b->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return b;
}

void fg_batch_destroy(fg_mmsg_batch *b) {
    if (!b) return;
    free(b->msgs); free(b->iovs); free(b->addrs); free(b->cmsgs);
    free(b->send_cmsg_on); free(b->buffers); free(b);
}

unsigned int fg_batch_slots(const fg_mmsg_batch *b) { return b->slots; }
size_t fg_batch_slot_bytes(const fg_mmsg_batch *b) { return b->slot_bytes; }
uint8_t *fg_batch_buffer(fg_mmsg_batch *b, unsigned int i) { return b->buffers + (size_t)i * b->slot_bytes; }
size_t fg_batch_length(const fg_mmsg_batch *b, unsigned int i) { return b->msgs[i].msg_len; }
void fg_batch_set_length(fg_mmsg_batch *b, unsigned int i, size_t len) {
    b->msgs[i].msg_len = (unsigned int)len;
    b->iovs[i].iov_len = len;
}
struct sockaddr *fg_batch_addr(fg_mmsg_batch *b, unsigned int i) { return (struct sockaddr *)&b->addrs[i]; }
socklen_t fg_batch_addr_len(const fg_mmsg_batch *b, unsigned int i) { return b->msgs[i].msg_hdr.msg_namelen; }
void fg_batch_set_addr(fg_mmsg_batch *b, unsigned int i, const struct sockaddr *sa, socklen_t len) {
    if (len > sizeof(struct sockaddr_storage)) len = sizeof(struct sockaddr_storage);
    memcpy(&b->addrs[i], sa, len);
    b->msgs[i].msg_hdr.msg_namelen = len;
}

int fg_batch_local_addr(fg_mmsg_batch *b, unsigned int i, struct sockaddr_storage *out) {
    struct msghdr *h = &b->msgs[i].msg_hdr;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi; memcpy(&pi, CMSG_DATA(c), sizeof pi);
            struct sockaddr_in *sin = (struct sockaddr_in *)out;
            memset(out, 0, sizeof *out);
            sin->sin_family = AF_INET; sin->sin_addr = pi.ipi_addr;
            return 1;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi; memcpy(&pi, CMSG_DATA(c), sizeof pi);
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
            memset(out, 0, sizeof *out);
            sin6->sin6_family = AF_INET6; sin6->sin6_addr = pi.ipi6_addr;
            return 1;
        }
    }
    return 0;
}

void fg_batch_set_source(fg_mmsg_batch *b, unsigned int i, const struct sockaddr *src) {
    uint8_t *buf = b->cmsgs + (size_t)i * FG_CMSG_SPACE;
    if (!src) { b->send_cmsg_on[i] = 0; return; }
    memset(buf, 0, FG_CMSG_SPACE);
    struct cmsghdr *c = (struct cmsghdr *)buf;
    if (src->sa_family == AF_INET) {
        c->cmsg_level = IPPROTO_IP; c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        struct in_pktinfo pi; memset(&pi, 0, sizeof pi);
        pi.ipi_spec_dst = ((const struct sockaddr_in *)src)->sin_addr;
        memcpy(CMSG_DATA(c), &pi, sizeof pi);
        b->send_cmsg_on[i] = (uint8_t)CMSG_SPACE(sizeof(struct in_pktinfo));
    } else {
        c->cmsg_level = IPPROTO_IPV6; c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
        struct in6_pktinfo pi; memset(&pi, 0, sizeof pi);
        pi.ipi6_addr = ((const struct sockaddr_in6 *)src)->sin6_addr;
        memcpy(CMSG_DATA(c), &pi, sizeof pi);
        b->send_cmsg_on[i] = (uint8_t)CMSG_SPACE(sizeof(struct in6_pktinfo));
    }
}

static void prepare_recv(fg_mmsg_batch *b, unsigned int n, int with_addr) {
    for (unsigned int i = 0; i < n; i++) {
        struct msghdr *h = &b->msgs[i].msg_hdr;
        b->iovs[i].iov_len = b->slot_bytes;
        h->msg_name = with_addr ? (void *)&b->addrs[i] : NULL;
        h->msg_namelen = with_addr ? sizeof(struct sockaddr_storage) : 0;
        h->msg_control = with_addr ? (void *)(b->cmsgs + (size_t)i * FG_CMSG_SPACE) : NULL;
        h->msg_controllen = with_addr ? FG_CMSG_SPACE : 0;
        h->msg_flags = 0;
        b->msgs[i].msg_len = 0;
    }
}

int fg_batch_recv(int fd, fg_mmsg_batch *b, unsigned int n) {
    if (n > b->slots) n = b->slots;
    prepare_recv(b, n, 1);
    int r;
    do { r = recvmmsg(fd, b->msgs, n, MSG_DONTWAIT, NULL); } while (r < 0 && errno == EINTR);
    return r;
}

int fg_batch_flags(const fg_mmsg_batch *b, unsigned int i) { return b->msgs[i].msg_hdr.msg_flags; }

int fg_batch_recv_connected(int fd, fg_mmsg_batch *b, unsigned int n) {
    if (n > b->slots) n = b->slots;
    prepare_recv(b, n, 0);
    int r;
    do { r = recvmmsg(fd, b->msgs, n, MSG_DONTWAIT, NULL); } while (r < 0 && errno == EINTR);
    return r;
}

static void prepare_send(fg_mmsg_batch *b, unsigned int first, unsigned int n, int with_addr) {
    for (unsigned int i = first; i < first + n; i++) {
        struct msghdr *h = &b->msgs[i].msg_hdr;
        b->iovs[i].iov_len = b->msgs[i].msg_len;
        if (with_addr) {
            h->msg_name = &b->addrs[i];
            // msg_namelen was set by fg_batch_set_addr or recv.
        } else {
            h->msg_name = NULL; h->msg_namelen = 0;
        }
        if (with_addr && b->send_cmsg_on[i]) {
            h->msg_control = b->cmsgs + (size_t)i * FG_CMSG_SPACE;
            h->msg_controllen = b->send_cmsg_on[i];
        } else {
            h->msg_control = NULL; h->msg_controllen = 0;
        }
        h->msg_flags = 0;
    }
}

int fg_batch_send(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int n) {
    if (first >= b->slots) return 0;
    if (first + n > b->slots) n = b->slots - first;
    prepare_send(b, first, n, 1);
    int r;
    do { r = sendmmsg(fd, b->msgs + first, n, MSG_DONTWAIT | MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r;
}

int fg_batch_send_connected(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int n) {
    if (first >= b->slots) return 0;
    if (first + n > b->slots) n = b->slots - first;
    prepare_send(b, first, n, 0);
    int r;
    do { r = sendmmsg(fd, b->msgs + first, n, MSG_DONTWAIT | MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r;
}

int fg_udp_socket(int family) {
    return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

int fg_enable_pktinfo(int fd, int family) {
    int one = 1;
    if (family == AF_INET6) {
        // A dual-stack socket receives v4 datagrams as v4-mapped; ask for both.
        (void)setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    }
    return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
}

int fg_set_buffers(int fd, int rcv_bytes, int snd_bytes) {
    int rc = 0;
    if (rcv_bytes > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv_bytes, sizeof rcv_bytes) < 0)
        rc |= setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv_bytes, sizeof rcv_bytes);
    if (snd_bytes > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd_bytes, sizeof snd_bytes) < 0)
        rc |= setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd_bytes, sizeof snd_bytes);
    return rc;
}
