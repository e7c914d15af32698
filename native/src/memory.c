/* Node-aware memory: mmap with a chosen page backing, mbind, first touch, move_pages, and the
 * thread memory policy. The NUMA calls are the kernel's system calls, the ABI libnuma wraps,
 * so no libnuma headers are needed to build. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "numaprobe/numaprobe.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#define NP_MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#define NP_MAP_HUGE_1GB (30 << MAP_HUGE_SHIFT)
#define NP_MPOL_MF_STRICT (1 << 0)
#define NP_MPOL_MF_MOVE (1 << 1)
#define NP_MPOL_F_NODE (1 << 0)
#define NP_MPOL_F_ADDR (1 << 1)
#define NP_THP_SIZE ((size_t)2 << 20)

static size_t base_page(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* A kernel built without NUMA (CONFIG_NUMA=n, common in micro-VMs such as Firecracker's)
 * answers ENOSYS to mbind, set/get_mempolicy and move_pages. Such a machine has exactly one
 * node, 0, and what the calls would establish holds by construction: a policy naming only
 * node 0 (or none) is what the kernel does anyway, and a page is on node 0 exactly when it is
 * resident, which mincore tells. Anything that names another node stays -ENOSYS. */
static int only_node0(const unsigned long *nodemask, unsigned long maxnode)
{
    if (nodemask == NULL)
        return 1;
    for (unsigned long w = 0; w * 64 < maxnode; w++)
        if (nodemask[w] & (w == 0 ? ~1ul : ~0ul))
            return 0;
    return 1;
}

int np_mem_map(np_region *r, size_t nbytes, int backing)
{
    if (r == NULL || nbytes == 0)
        return -EINVAL;
    r->addr = r->map_addr = NULL;
    r->length = r->map_length = 0;
    size_t page, extra = 0;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    switch (backing) {
    case NP_BACKING_4K:
        page = base_page();
        break;
    case NP_BACKING_THP:
        /* Map 2 MiB more so a 2 MiB-aligned range fits inside: THP needs aligned extents. */
        page = base_page();
        extra = NP_THP_SIZE;
        break;
    case NP_BACKING_HUGETLB_2M:
        page = (size_t)2 << 20;
        flags |= MAP_HUGETLB | NP_MAP_HUGE_2MB;
        flags &= ~MAP_NORESERVE; /* reserve now: fail at mmap, not with SIGBUS at touch */
        break;
    case NP_BACKING_HUGETLB_1G:
        page = (size_t)1 << 30;
        flags |= MAP_HUGETLB | NP_MAP_HUGE_1GB;
        flags &= ~MAP_NORESERVE;
        break;
    default:
        return -EINVAL;
    }
    size_t unit = backing == NP_BACKING_THP ? NP_THP_SIZE : page;
    if (nbytes > SIZE_MAX - unit - extra)
        return -EINVAL;
    size_t length = round_up(nbytes, unit);
    size_t map_length = length + extra;
    void *p = mmap(NULL, map_length, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    uintptr_t start = (uintptr_t)p;
    if (backing == NP_BACKING_THP)
        start = round_up(start, NP_THP_SIZE);
    int advice = backing == NP_BACKING_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE;
    if (backing <= NP_BACKING_THP && madvise((void *)start, length, advice) != 0) {
        int e = errno;
        /* MADV_NOHUGEPAGE fails only where THP is not built in: nothing to disable then. */
        if (backing == NP_BACKING_THP || e != EINVAL) {
            munmap(p, map_length);
            return -e;
        }
    }
    r->map_addr = p;
    r->map_length = map_length;
    r->addr = (void *)start;
    r->length = length;
    r->page_size = page;
    r->backing = backing;
    return 0;
}

int np_mem_unmap(np_region *r)
{
    if (r == NULL)
        return -EINVAL;
    if (r->map_addr == NULL)
        return 0;
    if (munmap(r->map_addr, r->map_length) != 0)
        return -errno;
    r->addr = r->map_addr = NULL;
    r->length = r->map_length = 0;
    return 0;
}

int np_mem_bind(void *addr, size_t len, int policy, const unsigned long *nodemask,
                unsigned long maxnode, unsigned flags)
{
    unsigned kflags = 0;
    if (flags & NP_MF_STRICT)
        kflags |= NP_MPOL_MF_STRICT;
    if (flags & NP_MF_MOVE)
        kflags |= NP_MPOL_MF_MOVE;
    /* The kernel reads maxnode - 1 bits (a historic off-by-one that libnuma also pads for). */
    if (syscall(SYS_mbind, addr, len, policy, nodemask, nodemask ? maxnode + 1 : 0, kflags) != 0)
        return errno == ENOSYS && only_node0(nodemask, maxnode) ? 0 : -errno;
    return 0;
}

int np_mem_touch(void *addr, size_t len, size_t page_size)
{
    if (page_size == 0)
        return -EINVAL;
    volatile char *p = addr;
    for (size_t off = 0; off < len; off += page_size)
        p[off] = 0;
    return 0;
}

/* move_pages takes an array of page addresses; do it in chunks so a huge region does not need
 * a huge temporary array. */
#define NP_CHUNK 4096

/* The kernel-without-NUMA answer to move_pages: 0 (node 0) for a resident page, -ENOENT for
 * one never touched, as move_pages itself reports them. */
static int resident_on_node0(void *const *pages, size_t n, int *out)
{
    size_t base = base_page();
    for (size_t i = 0; i < n; i++) {
        unsigned char in_core = 0;
        if (mincore(pages[i], base, &in_core) == 0)
            out[i] = (in_core & 1) ? 0 : -ENOENT;
        else if (errno == ENOMEM) /* not mapped: move_pages says -EFAULT */
            out[i] = -EFAULT;
        else
            return -errno;
    }
    return 0;
}

static int move_pages_chunked(void *addr, size_t npages, size_t page_size, int node, int *out)
{
    void *pages[NP_CHUNK];
    int nodes[NP_CHUNK];
    for (size_t done = 0; done < npages;) {
        size_t n = npages - done < NP_CHUNK ? npages - done : NP_CHUNK;
        for (size_t i = 0; i < n; i++) {
            pages[i] = (char *)addr + (done + i) * page_size;
            nodes[i] = node;
        }
        long r = syscall(SYS_move_pages, 0, (unsigned long)n, pages, node < 0 ? NULL : nodes,
                         out + done, node < 0 ? 0 : NP_MPOL_MF_MOVE);
        if (r < 0 && errno == ENOSYS && node <= 0)
            r = resident_on_node0(pages, n, out + done);
        else if (r < 0)
            r = -errno;
        if (r < 0)
            return (int)r;
        done += n;
    }
    return 0;
}

int np_mem_where(void *addr, size_t npages, size_t page_size, int *nodes)
{
    if (addr == NULL || nodes == NULL || page_size == 0)
        return -EINVAL;
    return move_pages_chunked(addr, npages, page_size, -1, nodes);
}

int np_mem_migrate(void *addr, size_t npages, size_t page_size, int node, int *status)
{
    if (addr == NULL || status == NULL || page_size == 0 || node < 0)
        return -EINVAL;
    return move_pages_chunked(addr, npages, page_size, node, status);
}

int np_mempolicy_get(int *policy, unsigned long *nodemask, unsigned long maxnode)
{
    if (syscall(SYS_get_mempolicy, policy, nodemask, nodemask ? maxnode + 1 : 0, NULL, 0) != 0) {
        if (errno != ENOSYS || policy == NULL)
            return -errno;
        *policy = 0; /* MPOL_DEFAULT, with an empty mask: the only policy such a kernel has */
        for (unsigned long w = 0; nodemask && w * 64 < maxnode; w++)
            nodemask[w] = 0;
    }
    return 0;
}

int np_mempolicy_set(int policy, const unsigned long *nodemask, unsigned long maxnode)
{
    if (syscall(SYS_set_mempolicy, policy, nodemask, nodemask ? maxnode + 1 : 0) != 0)
        return errno == ENOSYS && only_node0(nodemask, maxnode) ? 0 : -errno;
    return 0;
}
