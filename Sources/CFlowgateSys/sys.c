// See include/CFlowgateSys.h. Compiled with _GNU_SOURCE (Package.swift).
#include <pthread.h>
#include "CFlowgateSys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103   // linux/udp.h, Linux 4.18+
#endif

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
// A lookup socket (IP_RECVORIGDSTADDR, Sources/FlowgateSystem/BPF/) likewise gets
// IPV6_ORIGDSTADDR and IP_ORIGDSTADDR, which are larger: room for the larger pair.
#define FG_CMSG_PKTINFO (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)))
#define FG_CMSG_ORIGDST (CMSG_SPACE(sizeof(struct sockaddr_in6)) + CMSG_SPACE(sizeof(struct sockaddr_in)))
#define FG_CMSG_SPACE (FG_CMSG_ORIGDST > FG_CMSG_PKTINFO ? FG_CMSG_ORIGDST : FG_CMSG_PKTINFO)

struct fg_mmsg_batch {
    unsigned int slots;
    size_t slot_bytes;
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *addrs;
    uint8_t *cmsgs;        // slots * FG_CMSG_SPACE
    uint8_t *send_cmsg_on; // per slot: 1 if a source was set for sending
    uint8_t *buffers;      // slots * slot_bytes
    struct iovec *gso_iovs; // one run of slots gathered for one GSO sendmsg
    int gso_off;            // set by fg_batch_set_gso(b, 0)
    unsigned long gso_sends;
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
    b->gso_iovs = calloc(slots, sizeof *b->gso_iovs);
    if (!b->gso_iovs || !b->msgs || !b->iovs || !b->addrs || !b->cmsgs || !b->send_cmsg_on || !b->buffers) {
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
    free(b->send_cmsg_on); free(b->buffers); free(b->gso_iovs); free(b);
}

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

int fg_batch_orig_dst(fg_mmsg_batch *b, unsigned int i, struct sockaddr_storage *out) {
    struct msghdr *h = &b->msgs[i].msg_hdr;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        // IPv4 first: on a dual-stack socket a v4 datagram carries both, and
        // the plain v4 form is what the listener's key and replies use.
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_ORIGDSTADDR) {
            memset(out, 0, sizeof *out);
            memcpy(out, CMSG_DATA(c), sizeof(struct sockaddr_in));
            return 1;
        }
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR) {
            memset(out, 0, sizeof *out);
            memcpy(out, CMSG_DATA(c), sizeof(struct sockaddr_in6));
            return 1;
        }
    }
    return 0;
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


// UDP generic segmentation offload (UDP_SEGMENT, Linux 4.18; Willem de
// Bruijn, "UDP GSO", netdev 0x12, 2018): a run of equal-sized datagrams to
// one destination leaves as ONE sendmsg whose payload the stack (or the NIC)
// cuts back into the same datagrams, so the route, netfilter and device
// transmit work is paid once per run instead of once per datagram. Receivers
// without UDP_GRO get the original datagrams (udp_unexpected_gso ->
// udp_rcv_segment in net/ipv4/udp.c), so boundaries are preserved exactly.
//
// Kernel limits (net/ipv4/udp.c udp_send_skb, include/linux/udp.h):
// at most UDP_MAX_SEGMENTS (64 before 6.x, 128 later) segments, the total
// under 64 KiB, and gso_size + headers within the route's MTU. Runs are only
// built from datagrams of at most FG_GSO_MAX_SEGMENT bytes, which fits the
// IPv6 minimum MTU (1280 - 40 - 8), so every route takes them; on any other
// refusal (EIO: no checksum offload; EINVAL; ENOPROTOOPT: old kernel) GSO is
// switched off for the process and sendmmsg carries on.
#define FG_GSO_MAX_SEGMENTS 64
#define FG_GSO_MAX_SEGMENT 1232
#define FG_GSO_MAX_TOTAL 65000
static int fg_gso_refused = 0;   // the kernel said no once: off for the process

int fg_gso_available(void) { return !__atomic_load_n(&fg_gso_refused, __ATOMIC_RELAXED); }
static void gso_refused(void) { __atomic_store_n(&fg_gso_refused, 1, __ATOMIC_RELAXED); }
static int gso_on(const fg_mmsg_batch *b) { return !b->gso_off && fg_gso_available(); }
unsigned long fg_batch_gso_sends(const fg_mmsg_batch *b) { return b->gso_sends; }
void fg_batch_set_gso(fg_mmsg_batch *b, int on) { b->gso_off = !on; }

// How many slots from `first` (at most n) form one GSO run: all of one size
// L, except that the last may be shorter (the kernel's rule).
static unsigned int gso_run(const fg_mmsg_batch *b, unsigned int first, unsigned int n, size_t *segment) {
    size_t size = b->msgs[first].msg_len;
    if (size == 0 || size > FG_GSO_MAX_SEGMENT) return 1;
    unsigned int k = 1;
    size_t total = size;
    while (k < n && k < FG_GSO_MAX_SEGMENTS) {
        size_t next = b->msgs[first + k].msg_len;
        if (next == 0 || next > size || total + next > FG_GSO_MAX_TOTAL) break;
        total += next;
        k++;
        if (next < size) break;   // a shorter datagram ends the run
    }
    *segment = size;
    return k;
}

// One GSO sendmsg of slots [first, first+k); msg_name/control from `name`.
static int send_gso(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int k, size_t segment,
                    void *name, socklen_t namelen, const uint8_t *extra_cmsg, size_t extra_len) {
    union { char buf[CMSG_SPACE(sizeof(uint16_t)) + FG_CMSG_SPACE]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    size_t used = 0;
    if (extra_len > 0) { memcpy(control.buf, extra_cmsg, extra_len); used = extra_len; }
    struct cmsghdr *c = (struct cmsghdr *)(control.buf + used);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t gso = (uint16_t)segment;
    memcpy(CMSG_DATA(c), &gso, sizeof gso);
    used += CMSG_SPACE(sizeof(uint16_t));
    for (unsigned int i = 0; i < k; i++) {
        b->gso_iovs[i].iov_base = b->buffers + (size_t)(first + i) * b->slot_bytes;
        b->gso_iovs[i].iov_len = b->msgs[first + i].msg_len;
    }
    struct msghdr h = {
        .msg_name = name, .msg_namelen = namelen,
        .msg_iov = b->gso_iovs, .msg_iovlen = k,
        .msg_control = control.buf, .msg_controllen = used,
    };
    ssize_t r;
    do { r = sendmsg(fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : (int)k;
}

// Slots [first, first+n) that go to the same address from the same source
// (a reply batch from one member's socket always does).
static unsigned int same_destination(const fg_mmsg_batch *b, unsigned int first, unsigned int n) {
    const struct msghdr *h0 = &b->msgs[first].msg_hdr;
    unsigned int k = 1;
    while (k < n) {
        unsigned int i = first + k;
        const struct msghdr *h = &b->msgs[i].msg_hdr;
        if (h->msg_namelen != h0->msg_namelen ||
            memcmp(&b->addrs[i], &b->addrs[first], h0->msg_namelen) != 0 ||
            b->send_cmsg_on[i] != b->send_cmsg_on[first] ||
            (b->send_cmsg_on[i] && memcmp(b->cmsgs + (size_t)i * FG_CMSG_SPACE,
                                          b->cmsgs + (size_t)first * FG_CMSG_SPACE, b->send_cmsg_on[i]) != 0))
            break;
        k++;
    }
    return k;
}

// The run starting at `first` as one GSO send, if it is one: returns the
// datagrams sent (>= 2), 0 when the caller should use sendmmsg instead (no
// run, GSO off, or the kernel refused it: then off for the process), or -1
// with errno (EAGAIN, ECONNREFUSED, ...) when nothing left. Addressed
// batches only coalesce neighbours to the same destination and source.
static int send_gso_run(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int n, int with_addr) {
    if (n < 2 || !gso_on(b)) return 0;
    unsigned int limit = with_addr ? same_destination(b, first, n) : n;
    size_t segment = 0;
    unsigned int k = limit >= 2 ? gso_run(b, first, limit, &segment) : 1;
    if (k < 2) return 0;
    int r = with_addr
        ? send_gso(fd, b, first, k, segment, &b->addrs[first], b->msgs[first].msg_hdr.msg_namelen,
                   b->send_cmsg_on[first] ? b->cmsgs + (size_t)first * FG_CMSG_SPACE : NULL, b->send_cmsg_on[first])
        : send_gso(fd, b, first, k, segment, NULL, 0, NULL, 0);
    if (r > 0) { b->gso_sends++; return r; }
    int e = errno;
    if (e == EIO || e == EINVAL || e == ENOPROTOOPT || e == EOPNOTSUPP) {
        gso_refused();   // this kernel or route will not take it
        return 0;
    }
    errno = e;
    return -1;
}

// Slots [first, first+n): a GSO run if one starts there, else one sendmmsg.
// Returns datagrams sent (the caller calls again for the rest) or -1.
static int send_slots(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int n, int with_addr) {
    if (first >= b->slots) return 0;
    if (first + n > b->slots) n = b->slots - first;
    int r = send_gso_run(fd, b, first, n, with_addr);
    if (r != 0) return r;
    prepare_send(b, first, n, with_addr);
    do { r = sendmmsg(fd, b->msgs + first, n, MSG_DONTWAIT | MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r;
}

int fg_batch_send(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int n) {
    return send_slots(fd, b, first, n, 1);
}

int fg_batch_send_connected(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int n) {
    return send_slots(fd, b, first, n, 0);
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

int fg_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    return pthread_setname_np(pthread_self(), buf);
}
