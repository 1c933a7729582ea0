// Thin wrappers for GNU-only calls that Swift's Glibc module hides.
// This file is compiled with _GNU_SOURCE; Swift code must not be (it turns
// sockaddr arguments into a transparent union). See docs/architecture.md §15.
#ifndef CFLOWGATESYS_H
#define CFLOWGATESYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

/// accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC)
int fg_accept_nonblock(int fd, struct sockaddr *addr, socklen_t *len);
/// pipe2(fds, O_NONBLOCK | O_CLOEXEC)
int fg_pipe_nonblock(int fds[2]);
/// fcntl(fd, F_SETPIPE_SZ, size); returns the new size or -1.
int fg_set_pipe_size(int fd, int size);
/// splice(in, NULL, out, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
ssize_t fg_splice(int fd_in, int fd_out, size_t len);

/// A batch of datagram slots for recvmmsg/sendmmsg: one buffer, one source
/// address and one control buffer per slot, allocated once per socket user.
typedef struct fg_mmsg_batch fg_mmsg_batch;

fg_mmsg_batch *fg_batch_create(unsigned int slots, size_t slot_bytes);
void fg_batch_destroy(fg_mmsg_batch *b);
/// Pointer to slot i's payload buffer (slot_bytes long).
uint8_t *fg_batch_buffer(fg_mmsg_batch *b, unsigned int i);
/// Length received into slot i (after recv) or to send (before send).
size_t fg_batch_length(const fg_mmsg_batch *b, unsigned int i);
void fg_batch_set_length(fg_mmsg_batch *b, unsigned int i, size_t len);
/// Peer address of slot i (source after recv, destination before send).
struct sockaddr *fg_batch_addr(fg_mmsg_batch *b, unsigned int i);
socklen_t fg_batch_addr_len(const fg_mmsg_batch *b, unsigned int i);
void fg_batch_set_addr(fg_mmsg_batch *b, unsigned int i, const struct sockaddr *sa, socklen_t len);
/// Local (destination) address of a received datagram from IP_PKTINFO /
/// IPV6_PKTINFO, written into out (sockaddr_storage-sized); returns 1 if found.
int fg_batch_local_addr(fg_mmsg_batch *b, unsigned int i, struct sockaddr_storage *out);
/// Before sendmmsg: set slot i's source address (IP_PKTINFO / IPV6_PKTINFO),
/// or clear it when src is NULL.
void fg_batch_set_source(fg_mmsg_batch *b, unsigned int i, const struct sockaddr *src);
/// recvmmsg(fd, ..., MSG_DONTWAIT) into up to n slots (with addresses and cmsgs).
int fg_batch_recv(int fd, fg_mmsg_batch *b, unsigned int n);
/// recvmmsg on a connected socket (no addresses, no cmsgs).
int fg_batch_recv_connected(int fd, fg_mmsg_batch *b, unsigned int n);
/// sendmmsg slots [first, first+n) with addresses (NULL address when len 0)
/// and PKTINFO sources where set; MSG_DONTWAIT | MSG_NOSIGNAL.
int fg_batch_send(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int n);
/// Sends slots [first, first+n) on a connected socket (no addresses): runs of
/// equal-sized datagrams as one UDP_SEGMENT (GSO) sendmsg each, the rest by
/// sendmmsg. Returns how many datagrams left (maybe fewer than n: call again
/// for the rest), or -1 with errno.
int fg_batch_send_connected(int fd, fg_mmsg_batch *b, unsigned int first, unsigned int n);
/// GSO sends this batch made; GSO on/off for one batch (on by default).
unsigned long fg_batch_gso_sends(const fg_mmsg_batch *b);
void fg_batch_set_gso(fg_mmsg_batch *b, int on);
/// 0 once the kernel refused UDP_SEGMENT (GSO is then off for the process).
int fg_gso_available(void);

/// Enable IP_PKTINFO (v4) and IPV6_RECVPKTINFO (v6) on a UDP socket.
int fg_enable_pktinfo(int fd, int family);
/// pthread_setname_np(pthread_self(), name): the name ps/top show (15 bytes at most).
int fg_set_thread_name(const char *name);
/// setsockopt SO_RCVBUFFORCE/SO_SNDBUFFORCE falling back to SO_RCVBUF/SO_SNDBUF.
int fg_set_buffers(int fd, int rcv_bytes, int snd_bytes);

/// The bpf() system call (bpf.c): just what the sk_lookup steering needs
/// (Sources/FlowgateSystem/BPF/). Each returns a descriptor or 0, or -1 with errno.
int fg_bpf_map_create(unsigned int type, unsigned int key_size, unsigned int value_size,
                      unsigned int max_entries, unsigned int flags, const char *name);
int fg_bpf_map_update(int map_fd, const void *key, const void *value, unsigned long long flags);
int fg_bpf_map_delete(int map_fd, const void *key);
int fg_bpf_map_lookup(int map_fd, const void *key, void *value);
/// BPF_PROG_LOAD of `insn_count` 8-byte instructions; the verifier's log goes to `log` when given.
int fg_bpf_prog_load(unsigned int type, const void *insns, unsigned int insn_count, const char *license,
                     unsigned int expected_attach_type, char *log, unsigned int log_size, const char *name);
/// BPF_LINK_CREATE: attaches `prog_fd` to `target_fd` (a network namespace for sk_lookup).
int fg_bpf_link_create(int prog_fd, int target_fd, unsigned int attach_type);
/// IP_RECVORIGDSTADDR (and IPV6_RECVORIGDSTADDR on AF_INET6): each datagram carries the
/// address and port it was sent to, which sk_lookup does not change.
int fg_enable_origdstaddr(int fd, int family);
/// The original destination (address and port) of received slot i from IP_ORIGDSTADDR /
/// IPV6_ORIGDSTADDR, written into out; returns 1 if found.
int fg_batch_orig_dst(fg_mmsg_batch *b, unsigned int i, struct sockaddr_storage *out);

/// Descriptor passing over a Unix socket (fdpass.c): at most FG_MAX_FDS per message
/// (the kernel's SCM_MAX_FD is 253; 252 carries 126 connection pairs).
#define FG_MAX_FDS 252
/// sendmsg of `len` bytes with `nfds` descriptors as SCM_RIGHTS (MSG_NOSIGNAL); -1 with errno.
long fg_send_with_fds(int sock, const void *buf, unsigned long len, const int *fds, int nfds);
/// recvmsg into `buf` with MSG_CMSG_CLOEXEC; the descriptors received go to `fds` (at most `maxfds`,
/// extras closed) and their count to `*nfds`; `*truncated` is set when bytes or descriptors were cut.
/// Returns the byte count (0 at EOF), -1 with errno.
long fg_recv_with_fds(int sock, void *buf, unsigned long len, int *fds, int maxfds, int *nfds, int *truncated);

#ifdef __cplusplus
}
#endif

/// A memfd holding `len` bytes of `buf`, sealed against every change
/// (F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL), offset 0; -1 with errno (memfd.c).
int fg_sealed_memfd(const char *name, const void *buf, unsigned long len);
/// 1 when `fd` carries all four seals above, 0 when not, -1 with errno.
int fg_is_fully_sealed(int fd);

#endif
