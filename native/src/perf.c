/* Performance counters of one thread (perf_event_open), where the kernel offers them: on bare
 * metal and some clouds the hardware's (cycles, instructions, cache misses), on every Linux the
 * kernel's software ones (task clock, context switches, migrations, page faults). A counter
 * the kernel does not offer is its -errno (ENOENT: no such event on this machine, as in most
 * VMs; EACCES/EPERM: perf_event_paranoid), never a zero. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "numaprobe/numaprobe.h"

int np_perf_open(int type, uint64_t config, int tid)
{
    if (type != PERF_TYPE_HARDWARE && type != PERF_TYPE_SOFTWARE && type != PERF_TYPE_HW_CACHE)
        return -EINVAL;
    if (tid < 0)
        return -EINVAL;
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = (uint32_t)type;
    attr.config = config;
    attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
    /* The hardware's in user space only (what perf_event_paranoid 2 allows); the kernel's
     * software events happen in the kernel, so they count there. */
    attr.exclude_kernel = type != PERF_TYPE_SOFTWARE;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, tid == 0 ? 0 : tid, -1, -1,
                      PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

int np_perf_read(int fd, uint64_t *value)
{
    if (fd < 0 || value == NULL)
        return -EINVAL;
    uint64_t v[3]; /* value, time enabled, time running */
    ssize_t n = read(fd, v, sizeof v);
    if (n < 0)
        return -errno;
    if (n != (ssize_t)sizeof v)
        return -EIO;
    /* Multiplexed with other counters: scaled up to the whole time it was enabled. */
    *value = v[2] > 0 && v[2] < v[1] ? (uint64_t)((double)v[0] * (double)v[1] / (double)v[2])
                                     : v[0];
    return 0;
}

int np_perf_close(int fd)
{
    if (fd < 0)
        return -EINVAL;
    return close(fd) == 0 ? 0 : -errno;
}
