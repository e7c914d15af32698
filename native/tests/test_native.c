/* Tests of the C core alone, meant for the AddressSanitizer/UBSan build (ctest): allocation,
 * placement, migration, pinning and the clock, with their error paths. Needs node 0 with memory
 * and CPU 0, which every Linux machine has. Prints "N passed, N failed" and exits non-zero on
 * any failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "numaprobe/numaprobe.h"

static int passed, failed;
/* 0 where the NUMA system calls fail with ENOSYS: a kernel built without NUMA, or qemu-user,
 * which does not emulate them (the aarch64 run in CI). The library then treats the machine as
 * one node, and the tests check that behaviour instead of the kernel's. */
static int numa_syscalls = 1;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, \
                    #cond);                                                                \
        }                                                                                  \
    } while (0)

#define MAXNODE 1024
static unsigned long node_mask[MAXNODE / 64];

static void mask_only(int node)
{
    memset(node_mask, 0, sizeof node_mask);
    node_mask[node / 64] |= 1ul << (node % 64);
}

static void test_map_bind_touch_where(int backing)
{
    np_region r;
    size_t n = (size_t)8 << 20;
    CHECK(np_mem_map(&r, n, backing) == 0);
    CHECK(r.length >= n && r.addr != NULL);
    CHECK((uintptr_t)r.addr % (backing == NP_BACKING_THP ? (2u << 20) : r.page_size) == 0);
    mask_only(0);
    CHECK(np_mem_bind(r.addr, r.length, NP_POLICY_BIND, node_mask, MAXNODE, 0) == 0);
    size_t npages = r.length / r.page_size;
    int nodes[4096];
    CHECK(npages <= 4096);
    /* Before the first touch no page is present. */
    CHECK(np_mem_where(r.addr, npages, r.page_size, nodes) == 0);
    CHECK(nodes[0] == -ENOENT);
    CHECK(np_mem_touch(r.addr, r.length, r.page_size) == 0);
    CHECK(np_mem_where(r.addr, npages, r.page_size, nodes) == 0);
    int on0 = 0;
    for (size_t i = 0; i < npages; i++)
        on0 += nodes[i] == 0;
    CHECK((size_t)on0 == npages);
    /* Migrating to the node they are on succeeds page by page. */
    CHECK(np_mem_migrate(r.addr, npages, r.page_size, 0, nodes) == 0);
    CHECK(nodes[0] == 0 && nodes[npages - 1] == 0);
    CHECK(np_mem_unmap(&r) == 0);
    CHECK(np_mem_unmap(&r) == 0); /* twice is harmless */
}

static void test_memory_errors(void)
{
    np_region r;
    CHECK(np_mem_map(&r, 0, NP_BACKING_4K) == -EINVAL);
    CHECK(np_mem_map(&r, 4096, 42) == -EINVAL);
    CHECK(np_mem_map(&r, SIZE_MAX - 100, NP_BACKING_4K) == -EINVAL);
    CHECK(np_mem_map(&r, (size_t)1 << 50, NP_BACKING_4K) == -ENOMEM);
    CHECK(np_mem_map(NULL, 4096, NP_BACKING_4K) == -EINVAL);
    /* hugetlb without reserved 1 GiB pages fails at mmap, not later with SIGBUS. */
    int rc = np_mem_map(&r, (size_t)1 << 30, NP_BACKING_HUGETLB_1G);
    if (rc == 0)
        np_mem_unmap(&r);
    else
        CHECK(rc == -ENOMEM || rc == -EINVAL);

    CHECK(np_mem_map(&r, 4096, NP_BACKING_4K) == 0);
    mask_only(MAXNODE - 1); /* a node that does not exist: the kernel's EINVAL, or ENOSYS */
    CHECK(np_mem_bind(r.addr, r.length, NP_POLICY_BIND, node_mask, MAXNODE, 0) ==
          (numa_syscalls ? -EINVAL : -ENOSYS));
    if (numa_syscalls) /* without them, only node 0 is checked (test_kernel_without_numa) */
        CHECK(np_mem_bind(r.addr, r.length, 99, node_mask, MAXNODE, 0) == -EINVAL);
    int st[1];
    CHECK(np_mem_migrate(r.addr, 1, 4096, -1, st) == -EINVAL);
    CHECK(np_mem_where(NULL, 1, 4096, st) == -EINVAL);
    CHECK(np_mem_touch(r.addr, r.length, 0) == -EINVAL);
    CHECK(np_mem_unmap(&r) == 0);
    CHECK(np_mem_unmap(NULL) == -EINVAL);
}

static void test_mempolicy(void)
{
    if (!numa_syscalls)
        return; /* the process policy without the kernel's: test_kernel_without_numa */
    int policy = -1;
    unsigned long saved[MAXNODE / 64] = {0};
    CHECK(np_mempolicy_get(&policy, saved, MAXNODE) == 0);
    mask_only(0);
    CHECK(np_mempolicy_set(NP_POLICY_BIND, node_mask, MAXNODE) == 0);
    int now = -1;
    unsigned long got[MAXNODE / 64] = {0};
    CHECK(np_mempolicy_get(&now, got, MAXNODE) == 0);
    CHECK(now == NP_POLICY_BIND && got[0] == 1);
    mask_only(MAXNODE - 1);
    CHECK(np_mempolicy_set(NP_POLICY_BIND, node_mask, MAXNODE) == -EINVAL);
    CHECK(np_mempolicy_set(policy, policy == NP_POLICY_DEFAULT ? NULL : saved, MAXNODE) == 0);
    CHECK(np_mempolicy_get(&now, got, MAXNODE) == 0 && now == policy);
}

/* Makes the NUMA system calls fail with ENOSYS in this process, as a kernel built without NUMA
 * does (seccomp; no privilege needed after PR_SET_NO_NEW_PRIVS). 0 or -errno. */
static int deny_numa_syscalls(void)
{
#if defined(__x86_64__)
    const unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    const unsigned arch = AUDIT_ARCH_AARCH64;
#else
    return -EOPNOTSUPP;
#endif
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mbind, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_set_mempolicy, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_get_mempolicy, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_move_pages, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return -errno;
    return 0;
}

/* A kernel without NUMA has one node: binding to node 0 holds, resident pages are on node 0,
 * and naming any other node is still an error. Runs in a child, whose filter dies with it. */
static void check_without_numa(void);

static void test_kernel_without_numa(void)
{
    if (!numa_syscalls) { /* the machine is one already: check it as it is */
        check_without_numa();
        return;
    }
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int rc = deny_numa_syscalls();
        if (rc == -EOPNOTSUPP)
            _exit(77);
        CHECK(rc == 0);
        unsigned long probe = 1;
        CHECK(syscall(SYS_set_mempolicy, NP_POLICY_BIND, &probe, 65) == -1 && errno == ENOSYS);
        check_without_numa();
        fflush(stderr);
        _exit(failed != 0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        return; /* no seccomp architecture constant for this CPU */
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void check_without_numa(void)
{
    {
        np_region r;
        CHECK(np_mem_map(&r, (size_t)4 << 20, NP_BACKING_4K) == 0);
        size_t npages = r.length / r.page_size;
        int nodes[1024];
        mask_only(0);
        CHECK(np_mem_bind(r.addr, r.length, NP_POLICY_BIND, node_mask, MAXNODE, 0) == 0);
        CHECK(np_mem_where(r.addr, npages, r.page_size, nodes) == 0 && nodes[0] == -ENOENT);
        CHECK(np_mem_touch(r.addr, r.length / 2, r.page_size) == 0);
        CHECK(np_mem_where(r.addr, npages, r.page_size, nodes) == 0);
        CHECK(nodes[0] == 0 && nodes[npages / 2 - 1] == 0 && nodes[npages / 2] == -ENOENT);
        CHECK(np_mem_migrate(r.addr, npages, r.page_size, 0, nodes) == 0 && nodes[0] == 0);
        CHECK(np_mem_migrate(r.addr, npages, r.page_size, 1, nodes) == -ENOSYS);
        int policy = -1;
        unsigned long got[MAXNODE / 64] = {[0] = ~0ul};
        CHECK(np_mempolicy_get(&policy, got, MAXNODE) == 0 && policy == NP_POLICY_DEFAULT && got[0] == 0);
        CHECK(np_mempolicy_set(NP_POLICY_BIND, node_mask, MAXNODE) == 0);
        CHECK(np_mempolicy_set(NP_POLICY_DEFAULT, NULL, MAXNODE) == 0);
        mask_only(1);
        CHECK(np_mem_bind(r.addr, r.length, NP_POLICY_BIND, node_mask, MAXNODE, 0) == -ENOSYS);
        CHECK(np_mempolicy_set(NP_POLICY_INTERLEAVE, node_mask, MAXNODE) == -ENOSYS);
        CHECK(np_mem_unmap(&r) == 0);
    }
}

static void test_affinity(void)
{
    unsigned char saved[128], mask[128], got[128];
    CHECK(np_affinity_get(0, saved, sizeof saved) == 0);
    memset(mask, 0, sizeof mask);
    mask[0] = 1; /* CPU 0 */
    CHECK(np_affinity_set(0, mask, sizeof mask) == 0);
    unsigned cpu = 99, node = 99;
    CHECK(np_getcpu(&cpu, &node) == 0);
    CHECK(cpu == 0 && node == 0);
    CHECK(np_affinity_get(np_gettid(), got, sizeof got) == 0);
    CHECK(memcmp(got, mask, sizeof mask) == 0);
    memset(mask, 0, sizeof mask);
    mask[127] = 0x80; /* CPU 1023 only: not on this machine */
    CHECK(np_affinity_set(0, mask, sizeof mask) == -EINVAL);
    CHECK(np_affinity_set(0, mask, 7) == -EINVAL); /* not a multiple of a long */
    CHECK(np_affinity_get(0, NULL, 8) == -EINVAL);
    CHECK(np_affinity_set(0, saved, sizeof saved) == 0);
    CHECK(np_affinity_get(0, got, sizeof got) == 0 && memcmp(got, saved, sizeof saved) == 0);
}

/* A process that asked to die with its parent gets the signal when the parent exits. The
 * leaf holds the pipe's write end until it dies; the test sees EOF on the read end only then
 * (poll with a time-out, so a leaf that survives fails the check instead of hanging). */
static void test_die_with_parent(void)
{
    CHECK(np_die_with_parent(9999) == -EINVAL);
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t mid = fork();
    if (mid == 0) {
        pid_t leaf = fork();
        if (leaf == 0) {
            close(fds[0]);
            if (np_die_with_parent(SIGKILL) != 0)
                _exit(1);
            char ok = 'k';
            (void)!write(fds[1], &ok, 1);
            pause(); /* the write end stays open until SIGKILL comes with mid's exit */
            _exit(2);
        }
        close(fds[1]);
        char c;
        _exit(read(fds[0], &c, 1) == 1 ? 0 : 1); /* the leaf is armed: exit above it */
    }
    close(fds[1]);
    int status = 0;
    CHECK(waitpid(mid, &status, 0) == mid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    char buf[1];
    CHECK(poll(&p, 1, 10000) == 1 && read(fds[0], buf, 1) == 0); /* EOF: the leaf is gone */
    close(fds[0]);
}

static void test_clock(void)
{
    CHECK(np_clock_kind() == NP_CLOCK_KIND);
    uint64_t a = np_clock_start(), b = np_clock_stop();
    CHECK(b >= a);
    double tpn = 0, tpn2 = 0;
    CHECK(np_clock_calibrate(CLOCK_MONOTONIC_RAW, 20000000, 20, &tpn) == 0);
    CHECK(np_clock_calibrate(CLOCK_MONOTONIC, 20000000, 20, &tpn2) == 0);
    CHECK(tpn > 0.01 && tpn < 100);
    CHECK(tpn2 / tpn > 0.99 && tpn2 / tpn < 1.01);
    CHECK(np_clock_calibrate(CLOCK_MONOTONIC_RAW, 0, 20, &tpn) == -EINVAL);
    CHECK(np_clock_calibrate((clockid_t)12345, 1000000, 20, &tpn) == -EINVAL);
    double lo = 0, med = 0;
    CHECK(np_clock_overhead(1000, &lo, &med) == 0 && lo <= med && lo >= 0);
    CHECK(np_clock_overhead(0, &lo, &med) == -EINVAL);
    uint64_t res = 0;
    CHECK(np_clock_resolution(1000, &res) == 0 && res > 0);
    CHECK(np_clock_resolution(1, &res) == -EINVAL);
    int inv = np_clock_invariant();
    CHECK(inv == 0 || inv == 1 || inv == -ENOTSUP);
}

static void test_chase(void)
{
    for (int g = 0; g < 2; g++) {
        np_region r;
        CHECK(np_mem_map(&r, (size_t)1 << 20, NP_BACKING_4K) == 0);
        CHECK(np_chase_build(r.addr, r.length, 64, g ? 4096 : 0, 42) == 0);
        size_t len = 0;
        CHECK(np_chase_cycle_length(r.addr, r.length / 64 + 1, &len) == 0);
        CHECK(len == r.length / 64); /* one cycle through every line */
        uint64_t ticks = 0;
        void *end = NULL;
        CHECK(np_chase_run(r.addr, 1 << 16, &ticks, &end) == 0 && ticks > 0 && end != NULL);
        CHECK(np_chase_run(r.addr, 33, &ticks, &end) == -EINVAL);
        CHECK(np_chase_build(r.addr, 64, 64, 0, 1) == -EINVAL); /* a single line */
        CHECK(np_chase_build(r.addr, r.length, 12, 0, 1) == -EINVAL);
        np_mem_unmap(&r);
    }
}

static int count_member(np_team *team, int i, void *arg)
{
    np_team_barrier(team);
    __atomic_add_fetch((int *)arg, i + 1, __ATOMIC_RELAXED);
    np_team_barrier(team);
    return 0;
}

static void test_team(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int cpus[2] = {0, ncpu > 1 ? 1 : 0}, ran_on[2] = {-1, -1}, sum = 0;
    np_failure f = {.call = "stale", .cpu = 7};
    CHECK(np_team_run(cpus, 2, count_member, &sum, ran_on, &f) == 0);
    CHECK(sum == 3 && ran_on[0] == cpus[0] && ran_on[1] == cpus[1]);
    CHECK(f.call == NULL && f.cpu == -1); /* success clears it */
    int bad[2] = {0, 100000};
    sum = 0;
    CHECK(np_team_run(bad, 2, count_member, &sum, NULL, &f) == -EINVAL);
    CHECK(sum == 0); /* nobody worked when one thread could not be placed */
    /* The failure names the system call and the CPU, not only the team. */
    CHECK(f.call != NULL && strcmp(f.call, "sched_setaffinity") == 0 && f.cpu == 100000);
    int negative[1] = {-3};
    CHECK(np_team_run(negative, 1, count_member, &sum, NULL, &f) == -EINVAL);
    CHECK(f.call != NULL && strcmp(f.call, "sched_setaffinity") == 0 && f.cpu == -3);
    CHECK(np_team_run(bad, 2, count_member, &sum, NULL, NULL) == -EINVAL); /* f is optional */
    CHECK(np_team_run(cpus, 0, count_member, &sum, NULL, &f) == -EINVAL);
    CHECK(f.call == NULL); /* an argument check: the team's own refusal */
}

static void test_bandwidth(void)
{
    size_t n = 1 << 14;
    np_region ra, rb, rc;
    CHECK(np_mem_map(&ra, n * 8, NP_BACKING_4K) == 0);
    CHECK(np_mem_map(&rb, n * 8, NP_BACKING_4K) == 0);
    CHECK(np_mem_map(&rc, n * 8, NP_BACKING_4K) == 0);
    double *a = ra.addr, *b = rb.addr, *c = rc.addr;
    unsigned isas = np_isa_supported();
    CHECK(isas & 1u);
    for (int isa = NP_ISA_SCALAR; isa <= NP_ISA_AVX512; isa++) {
        if (!(isas & (1u << isa)))
            continue;
        for (size_t i = 0; i < n; i++) {
            b[i] = (double)i;
            c[i] = 2.0;
        }
        for (int k = 0; k < NP_BW_NKERNELS; k++) {
            double sum = np_bw_pass(k, isa, a, b, c, n, 3.0);
            int ok = 1;
            for (size_t i = 0; i < n && ok; i++) {
                double want = k == NP_BW_WRITE || k == NP_BW_WRITE_NT ? 3.0
                            : k == NP_BW_COPY || k == NP_BW_COPY_NT   ? b[i]
                            : k == NP_BW_TRIAD || k == NP_BW_TRIAD_NT ? b[i] + 6.0
                                                                      : a[i];
                ok = a[i] == want;
            }
            CHECK(ok);
            if (k == NP_BW_READ) {
                double want = 0;
                for (size_t i = 0; i < n; i++)
                    want += a[i];
                CHECK(sum == want);
            }
        }
    }
    /* The threaded run: two threads, their own arrays, samples recorded. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int cpus[2] = {0, ncpu > 1 ? 1 : 0};
    double *as[2] = {a, a + n / 2}, *bs[2] = {b, b + n / 2};
    uint64_t t0[6], t1[6];
    double cs[2];
    np_bw_args args = {.kernel = NP_BW_COPY, .isa = NP_ISA_SCALAR, .n = n / 2, .a = as,
                       .b = bs, .reps = 3, .t0 = t0, .t1 = t1, .checksum = cs};
    CHECK(np_bw_run(cpus, 2, &args, NULL, NULL) == 0);
    for (int i = 0; i < 6; i++)
        CHECK(t1[i] > t0[i]);
    np_failure f;
    int bad[2] = {0, 100000};
    CHECK(np_bw_run(bad, 2, &args, NULL, &f) == -EINVAL);
    CHECK(f.call != NULL && strcmp(f.call, "sched_setaffinity") == 0 && f.cpu == 100000);
    args.b = NULL;
    CHECK(np_bw_run(cpus, 2, &args, NULL, &f) == -EINVAL); /* copy needs a source */
    CHECK(f.call == NULL);
    args.n = 100;
    CHECK(np_bw_run(cpus, 2, &args, NULL, NULL) == -EINVAL);
    args.n = n / 2;
    args.kernel = NP_BW_TRIAD; /* triad needs b and c: the table says so */
    args.b = bs;
    CHECK(np_bw_run(cpus, 2, &args, NULL, NULL) == -EINVAL);
    args.kernel = NP_BW_NKERNELS;
    CHECK(np_bw_run(cpus, 2, &args, NULL, NULL) == -EINVAL);
    np_mem_unmap(&ra);
    np_mem_unmap(&rb);
    np_mem_unmap(&rc);
}

/* The kernel table: one entry per enum value, in order, its figures consistent. */
static void test_bw_kernel_table(void)
{
    for (int k = 0; k < NP_BW_NKERNELS; k++) {
        const np_bw_kernel_info *info = np_bw_kernel_info_get(k);
        CHECK(info != NULL && info->name != NULL && info->doc != NULL);
        if (info == NULL)
            continue;
        CHECK(info->streams == info->reads + info->writes);
        CHECK(info->bytes == 8 * info->streams);
        CHECK(info->nt == 0 || info->nt == 1);
        CHECK(info->nt == (strstr(info->name, "_nt") != NULL));
        for (int j = 0; j < k; j++)
            CHECK(strcmp(np_bw_kernel_info_get(j)->name, info->name) != 0);
    }
    CHECK(strcmp(np_bw_kernel_info_get(NP_BW_READ)->name, "read") == 0);
    CHECK(np_bw_kernel_info_get(NP_BW_READ)->reads == 1 &&
          np_bw_kernel_info_get(NP_BW_READ)->writes == 0);
    CHECK(np_bw_kernel_info_get(NP_BW_TRIAD_NT)->reads == 2 &&
          np_bw_kernel_info_get(NP_BW_TRIAD_NT)->bytes == 24);
    CHECK(np_bw_kernel_info_get(NP_BW_NKERNELS) == NULL && np_bw_kernel_info_get(-1) == NULL);
}

/* The load generator ends by its deadline when nobody stops it, and when another thread sets
 * its stop flag; a member reads its buffer or walks its chain (r holds a chain in its first
 * half and a buffer in its second). */
struct stopper {
    volatile int *stop;
};
static void *stop_soon(void *p)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    __atomic_store_n(((struct stopper *)p)->stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_load_generator(np_region *r, const int *cpus, int n)
{
    volatile int stop = 0;
    void *chains[2] = {NULL, r->addr};
    double *bufs[2] = {(double *)((char *)r->addr + r->length / 2), NULL};
    uint64_t bytes[2] = {0, 0};
    uint64_t hz = 1000000; /* a lower bound of the counter's rate: 1 ms or more */
    np_load_args g = {.bufs = bufs, .n = r->length / 2 / 8, .delay = 5, .chains = chains,
                      .stop = &stop, .max_ticks = 20 * hz, .bytes = bytes};
    CHECK(np_load_run(cpus, n, &g, NULL, NULL) == 0);
    CHECK(g.t1 >= g.t0 + g.max_ticks && bytes[0] > 0 && bytes[0] % 512 == 0);
    if (n > 1)
        CHECK(bytes[1] > 0 && bytes[1] % (64 * NP_LOAD_CHASE_STEP) == 0);
    /* Stopped from outside long before its (one hour at 1 GHz or more) deadline. */
    g.max_ticks = (uint64_t)3600 * 1000000000u;
    pthread_t t;
    struct stopper sp = {.stop = &stop};
    CHECK(pthread_create(&t, NULL, stop_soon, &sp) == 0);
    CHECK(np_load_run(cpus, n, &g, NULL, NULL) == 0);
    pthread_join(t, NULL);
    CHECK(stop == 1 && g.t1 > g.t0 && bytes[0] > 0);
    /* Refused: no stop flag, no deadline, a traffic member without a buffer. */
    g.stop = NULL;
    CHECK(np_load_run(cpus, n, &g, NULL, NULL) == -EINVAL);
    g.stop = &stop;
    g.max_ticks = 0;
    CHECK(np_load_run(cpus, n, &g, NULL, NULL) == -EINVAL);
    g.max_ticks = 1;
    g.chains = NULL;
    bufs[1] = NULL;
    CHECK(np_load_run(cpus, 2, &g, NULL, NULL) == -EINVAL);
}

static void test_c2c_and_loaded(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    np_region r;
    CHECK(np_mem_map(&r, (size_t)1 << 20, NP_BACKING_4K) == 0);
    uint64_t ticks = 0;
    if (ncpu > 1) {
        CHECK(np_c2c_run(0, 1, r.addr, 1000, &ticks, NULL) == 0 && ticks > 0);
        CHECK(*(uint64_t *)r.addr == 2000);
    }
    np_failure f;
    CHECK(np_c2c_run(0, 0, r.addr, 10, &ticks, &f) == -EINVAL && f.call == NULL);
    CHECK(np_c2c_run(0, 1, (char *)r.addr + 8, 10, &ticks, NULL) == -EINVAL);
    CHECK(np_c2c_run(0, 100000, r.addr, 10, &ticks, &f) == -EINVAL);
    CHECK(f.call != NULL && strcmp(f.call, "sched_setaffinity") == 0 && f.cpu == 100000);

    CHECK(np_chase_build(r.addr, r.length / 2, 64, 0, 7) == 0);
    int cpus[2] = {0, ncpu > 1 ? 1 : 0};
    double *bufs[1] = {(double *)((char *)r.addr + r.length / 2)};
    uint64_t lat[3], bytes[1] = {0};
    np_loaded_args la = {.chain = r.addr, .loads = 1 << 14, .samples = 3, .lat_ticks = lat,
                         .bufs = bufs, .n = r.length / 2 / 8, .delay = 10, .bytes = bytes};
    CHECK(np_loaded_run(cpus, ncpu > 1 ? 2 : 1, &la, NULL, NULL) == 0);
    CHECK(lat[0] > 0 && lat[2] > 0 && la.t1 > la.t0);
    /* The traffic thread reads while the chase runs; a chase that ends before it was given a
     * CPU (under emulation, qemu-user) reads nothing, so the chase grows until it has. */
    for (int k = 0; ncpu > 1 && bytes[0] == 0 && k < 6; k++) {
        la.loads *= 8;
        CHECK(np_loaded_run(cpus, 2, &la, NULL, NULL) == 0);
    }
    la.loads = 1 << 14;
    if (ncpu > 1)
        CHECK(bytes[0] > 0 && bytes[0] % 512 == 0);
    int far[2] = {0, 100000};
    CHECK(np_loaded_run(far, 2, &la, NULL, &f) == -EINVAL);
    CHECK(f.call != NULL && strcmp(f.call, "sched_setaffinity") == 0 && f.cpu == 100000);
    la.loads = 31;
    CHECK(np_loaded_run(cpus, 1, &la, NULL, NULL) == -EINVAL);
    test_load_generator(&r, cpus, ncpu > 1 ? 2 : 1);
    np_mem_unmap(&r);
}

/* Every compute kernel this CPU has computes what it says (the same operations as a scalar
 * reference, so the timed loop does the work it is credited with); every other one is
 * refused, not faked. */
static void test_flops(void)
{
    const float xy[3] = {0.999999f, 1e-6f, 1.0f};
    const uint64_t iters = 1000;
    for (int k = 0; k < NP_FL_NKERNELS; k++) {
        const np_fl_kernel_info *info = np_fl_kernel_info_get(k);
        CHECK(info != NULL && info->name != NULL && info->ops > 0 && info->instructions > 0);
        for (int j = 0; j < k; j++)
            CHECK(strcmp(np_fl_kernel_info_get(j)->name, info->name) != 0);
        int rc = np_fl_supported(k);
        if (rc != 0) { /* AMX may also be refused by the kernel (arch_prctl) */
            CHECK(rc == -ENOTSUP || k == NP_FL_BF16_AMX || k == NP_FL_INT8_AMX);
            uint64_t t0, t1;
            double sink;
            np_fl_args args = {.kernel = k, .iters = 10, .reps = 1, .t0 = &t0, .t1 = &t1,
                               .sink = &sink};
            int cpu0 = 0;
            CHECK(np_fl_run(&cpu0, 1, &args, NULL, NULL) == rc);
            continue;
        }
        CHECK(np_fl_ops(k, iters) == iters * (uint64_t)info->ops *
              (k == NP_FL_CLOCK ? 100u : (uint64_t)info->instructions));
        if (k == NP_FL_F32_SCALAR || k == NP_FL_F32_AVX2 || k == NP_FL_F32_AVX512 ||
            k == NP_FL_F32_NEON || k == NP_FL_F32_SVE) {
            float sum = 0; /* each lane: a <- fma(a, x, y), from 1 + k; summed in order */
            for (int acc = 0; acc < 12; acc++) {
                float a = xy[2] + (float)acc;
                for (uint64_t i = 0; i < iters; i++)
                    a = __builtin_fmaf(a, xy[0], xy[1]);
                sum = acc == 0 ? a : sum + a;
            }
            double got = np_fl_pass(k, iters, xy);
            double want = k == NP_FL_F32_SCALAR ? 0 : k == NP_FL_F32_AVX2 ? 2.0 * sum
                          : k == NP_FL_F32_AVX512 ? 16.0 * sum
                          : k == NP_FL_F32_SVE ? info->ops / 2 * (double)sum : 4.0 * sum;
            if (k == NP_FL_F32_SCALAR) { /* a double sum of the twelve */
                for (int acc = 0; acc < 12; acc++) {
                    float a = xy[2] + (float)acc;
                    for (uint64_t i = 0; i < iters; i++)
                        a = __builtin_fmaf(a, xy[0], xy[1]);
                    want += a;
                }
            }
            CHECK(got > 0 && (got - want) * (got - want) <= 1e-6 * want * want);
        }
        if (k == NP_FL_CLOCK)
            CHECK(np_fl_pass(k, iters, (const float[]){0, 3, 0}) == 300.0 * (double)iters);
        if (k == NP_FL_INT8_AVXVNNI) /* lane 0: sum of (acc + 4 x iters) over 12 */
            CHECK(np_fl_pass(k, iters, (const float[]){1, 1, 0}) == 66 + 48.0 * iters);
        if (k == NP_FL_INT8_AVX512)
            CHECK(np_fl_pass(k, iters, (const float[]){1, 1, 0}) == 16 * (66 + 48.0 * iters));
        if (k == NP_FL_INT8_AMX) /* 64 products of 1 x 1 per element per step */
            CHECK(np_fl_pass(k, iters, (const float[]){1, 1, 0}) == 64.0 * iters);
        /* The threaded run records every pass. */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int cpus[2] = {0, ncpu > 1 ? 1 : 0};
        uint64_t t0[4], t1[4];
        double sink[2];
        np_fl_args args = {.kernel = k, .iters = iters, .reps = 2, .t0 = t0, .t1 = t1,
                           .sink = sink};
        CHECK(np_fl_run(cpus, 2, &args, NULL, NULL) == 0);
        for (int i = 0; i < 4; i++)
            CHECK(t1[i] > t0[i]);
    }
    CHECK(np_fl_kernel_info_get(NP_FL_NKERNELS) == NULL && np_fl_kernel_info_get(-1) == NULL);
    CHECK(np_fl_supported(NP_FL_NKERNELS) == -EINVAL);
    CHECK(np_fl_ops(-1, 10) == 0);
    uint64_t t0, t1;
    double sink;
    np_fl_args args = {.kernel = NP_FL_CLOCK, .iters = 0, .reps = 1, .t0 = &t0, .t1 = &t1,
                       .sink = &sink};
    int cpu0 = 0;
    CHECK(np_fl_run(&cpu0, 1, &args, NULL, NULL) == -EINVAL); /* no iterations */
    args.iters = 10;
    args.sink = NULL;
    CHECK(np_fl_run(&cpu0, 1, &args, NULL, NULL) == -EINVAL);
    args.sink = &sink;
    np_failure f;
    int bad = 100000;
    CHECK(np_fl_run(&bad, 1, &args, NULL, &f) == -EINVAL);
    CHECK(f.call != NULL && strcmp(f.call, "sched_setaffinity") == 0 && f.cpu == 100000);
}

/* Counters where the kernel offers them, and a clear -errno where it does not. */
static void test_perf(void)
{
    const int refused[] = {ENOENT, EOPNOTSUPP, ENODEV, EACCES, EPERM, ENOSYS, EINVAL};
    struct { int type; uint64_t config; } events[] = {{1, 1 /* task clock */}, {0, 0 /* cycles */}};
    for (size_t e = 0; e < sizeof events / sizeof events[0]; e++) {
        int fd = np_perf_open(events[e].type, events[e].config, 0);
        if (fd < 0) {
            int known = 0;
            for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++)
                known |= fd == -refused[k];
            CHECK(known);
            continue;
        }
        volatile uint64_t spin = 0;
        for (int i = 0; i < 1000000; i++)
            spin += (uint64_t)i;
        uint64_t v = 0;
        CHECK(np_perf_read(fd, &v) == 0 && v > 0);
        CHECK(np_perf_close(fd) == 0);
    }
    CHECK(np_perf_open(99, 0, 0) == -EINVAL);
    CHECK(np_perf_open(1, 1, -5) == -EINVAL);
    uint64_t v;
    CHECK(np_perf_read(-1, &v) == -EINVAL);
    CHECK(np_perf_close(-1) == -EINVAL);
}

int main(void)
{
    numa_syscalls = !(syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0) == -1 &&
                      errno == ENOSYS);
    if (!numa_syscalls)
        printf("no NUMA system calls (ENOSYS: a kernel without NUMA, or qemu-user): the "
               "one-node behaviour is checked in their place\n");
    test_map_bind_touch_where(NP_BACKING_4K);
    test_map_bind_touch_where(NP_BACKING_THP);
    test_memory_errors();
    test_mempolicy();
    test_kernel_without_numa();
    test_affinity();
    test_die_with_parent();
    test_clock();
    test_chase();
    test_team();
    test_bandwidth();
    test_bw_kernel_table();
    test_c2c_and_loaded();
    test_flops();
    test_perf();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
