/* CPU affinity of threads and where the caller runs: sched_{get,set}affinity, getcpu, gettid;
 * and a process that dies with its parent (prctl PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "numaprobe/numaprobe.h"

/* The raw system calls take a byte count that must be a multiple of sizeof(long); the kernel
 * copies at most its own cpumask size and fails with EINVAL when the mask is too small for the
 * machine's possible CPUs. */

int np_affinity_get(int tid, unsigned char *mask, size_t mask_bytes)
{
    if (mask == NULL || mask_bytes == 0 || mask_bytes % sizeof(long) != 0)
        return -EINVAL;
    long r = syscall(SYS_sched_getaffinity, (pid_t)tid, mask_bytes, mask);
    if (r < 0)
        return -errno;
    /* The kernel returns how many bytes it wrote; clear the rest. */
    for (size_t i = (size_t)r; i < mask_bytes; i++)
        mask[i] = 0;
    return 0;
}

int np_affinity_set(int tid, const unsigned char *mask, size_t mask_bytes)
{
    if (mask == NULL || mask_bytes == 0 || mask_bytes % sizeof(long) != 0)
        return -EINVAL;
    if (syscall(SYS_sched_setaffinity, (pid_t)tid, mask_bytes, mask) != 0)
        return -errno;
    return 0;
}

int np_getcpu(unsigned *cpu, unsigned *node)
{
    if (syscall(SYS_getcpu, cpu, node, NULL) != 0)
        return -errno;
    return 0;
}

int np_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

int np_die_with_parent(int signum)
{
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)signum, 0UL, 0UL, 0UL) != 0)
        return -errno;
    return 0;
}
