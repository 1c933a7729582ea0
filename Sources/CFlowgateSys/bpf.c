// The bpf() system call for the sk_lookup port-range steering
// (Sources/FlowgateSystem/BPF/, docs/architecture.md §20). Glibc has no
// wrapper; union bpf_attr comes from the kernel headers (linux/bpf.h).
#include "CFlowgateSys.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>

static long fg_bpf(int cmd, union bpf_attr *attr) {
    return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

int fg_bpf_map_create(unsigned int type, unsigned int key_size, unsigned int value_size,
                      unsigned int max_entries, unsigned int flags, const char *name) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = type;
    a.key_size = key_size;
    a.value_size = value_size;
    a.max_entries = max_entries;
    a.map_flags = flags;
    if (name) strncpy(a.map_name, name, sizeof a.map_name - 1);
    return (int)fg_bpf(BPF_MAP_CREATE, &a);
}

int fg_bpf_map_update(int map_fd, const void *key, const void *value, unsigned long long flags) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = (unsigned int)map_fd;
    a.key = (unsigned long long)(unsigned long)key;
    a.value = (unsigned long long)(unsigned long)value;
    a.flags = flags;
    return (int)fg_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

int fg_bpf_map_delete(int map_fd, const void *key) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = (unsigned int)map_fd;
    a.key = (unsigned long long)(unsigned long)key;
    return (int)fg_bpf(BPF_MAP_DELETE_ELEM, &a);
}

int fg_bpf_map_lookup(int map_fd, const void *key, void *value) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = (unsigned int)map_fd;
    a.key = (unsigned long long)(unsigned long)key;
    a.value = (unsigned long long)(unsigned long)value;
    return (int)fg_bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

int fg_bpf_prog_load(unsigned int type, const void *insns, unsigned int insn_count, const char *license,
                     unsigned int expected_attach_type, char *log, unsigned int log_size, const char *name) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = type;
    a.insns = (unsigned long long)(unsigned long)insns;
    a.insn_cnt = insn_count;
    a.license = (unsigned long long)(unsigned long)license;
    a.expected_attach_type = expected_attach_type;
    if (log && log_size > 0) {
        log[0] = 0;
        a.log_buf = (unsigned long long)(unsigned long)log;
        a.log_size = log_size;
        a.log_level = 1;
    }
    if (name) strncpy(a.prog_name, name, sizeof a.prog_name - 1);
    int fd = (int)fg_bpf(BPF_PROG_LOAD, &a);
    // Loaded with a log buffer, a verifier that accepts still fills it on
    // some kernels; a failure to load is what the caller reports.
    return fd;
}

int fg_bpf_link_create(int prog_fd, int target_fd, unsigned int attach_type) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.link_create.prog_fd = (unsigned int)prog_fd;
    a.link_create.target_fd = (unsigned int)target_fd;
    a.link_create.attach_type = attach_type;
    return (int)fg_bpf(BPF_LINK_CREATE, &a);
}

int fg_enable_origdstaddr(int fd, int family) {
    int one = 1;
    if (family == AF_INET6) {
        // A dual-stack socket receives v4 datagrams too: ask for both.
        (void)setsockopt(fd, IPPROTO_IP, IP_RECVORIGDSTADDR, &one, sizeof one);
        return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof one);
    }
    return setsockopt(fd, IPPROTO_IP, IP_RECVORIGDSTADDR, &one, sizeof one);
}
