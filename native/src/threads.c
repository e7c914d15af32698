/* A team of pinned threads released together: the harness every multi-threaded kernel uses.
 * Each thread pins itself to its CPU before it does anything else, then waits at the start
 * gate, so no thread starts measuring before all are placed. The barrier spins (it does not
 * sleep) so that all threads leave it within a fraction of a microsecond. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "numaprobe/numaprobe.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

struct np_team {
    int n;
    int ready;        /* threads pinned and waiting at the start gate */
    int go;           /* the start gate                               */
    int arrived;      /* sense-reversing barrier                      */
    int sense;
    volatile int stop;
    np_team_fn fn;
    void *arg;
};

struct member {
    np_team *team;
    int index, cpu, ran_on, rc;
    const char *failed; /* the call behind a non-zero rc (NULL: fn's own return) */
};

static __thread int local_sense;

/* Spin, yielding now and then so that an oversubscribed machine still makes progress. */
static void spin_until(int *flag, int value)
{
    for (unsigned i = 1; __atomic_load_n(flag, __ATOMIC_ACQUIRE) != value; i++) {
        CPU_RELAX();
        if (i % 4096 == 0)
            sched_yield();
    }
}

void np_team_barrier(np_team *team)
{
    local_sense = !local_sense;
    if (__atomic_add_fetch(&team->arrived, 1, __ATOMIC_ACQ_REL) == team->n) {
        __atomic_store_n(&team->arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&team->sense, local_sense, __ATOMIC_RELEASE);
    } else {
        spin_until(&team->sense, local_sense);
    }
}

int np_team_size(const np_team *team)
{
    return team->n;
}

volatile int *np_team_stop_flag(np_team *team)
{
    return &team->stop;
}

/* Pins the caller to `cpu`; on failure *call names what failed. */
static int pin_self(int cpu, const char **call)
{
    *call = "sched_setaffinity"; /* a CPU id out of any kernel's range: EINVAL, as it says */
    if (cpu < 0 || cpu >= 1 << 20)
        return -EINVAL;
    size_t bytes = ((size_t)cpu / 64 + 1) * 8;
    if (bytes < 128)
        bytes = 128;
    unsigned char *mask = calloc(bytes, 1);
    if (mask == NULL) {
        *call = "calloc";
        return -ENOMEM;
    }
    mask[cpu / 8] |= (unsigned char)(1u << (cpu % 8));
    int rc = np_affinity_set(0, mask, bytes);
    free(mask);
    return rc;
}

static void *member_main(void *p)
{
    struct member *m = p;
    np_team *team = m->team;
    local_sense = 0;
    m->rc = pin_self(m->cpu, &m->failed);
    if (m->rc == 0)
        m->failed = NULL;
    unsigned cpu = 0, node = 0;
    if (m->rc == 0 && np_getcpu(&cpu, &node) == 0)
        m->ran_on = (int)cpu;
    if (m->rc != 0)
        team->stop = 1; /* a thread that could not be placed stops the whole team */
    __atomic_add_fetch(&team->ready, 1, __ATOMIC_ACQ_REL);
    spin_until(&team->go, 1);
    if (team->stop)
        return NULL;
    m->rc = team->fn(team, m->index, team->arg);
    return NULL;
}

static void set_failure(np_failure *failed, const char *call, int cpu)
{
    if (failed != NULL)
        *failed = (np_failure){.call = call, .cpu = cpu};
}

int np_team_run(const int *cpus, int n, np_team_fn fn, void *arg, int *ran_on,
                np_failure *failed)
{
    set_failure(failed, NULL, -1);
    if (cpus == NULL || n < 1 || fn == NULL)
        return -EINVAL;
    np_team team = {.n = n, .fn = fn, .arg = arg};
    struct member *ms = calloc((size_t)n, sizeof *ms);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    int rc = 0, started = 0;
    if (ms == NULL || th == NULL) {
        free(ms);
        free(th);
        set_failure(failed, "calloc", -1);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        ms[i] = (struct member){.team = &team, .index = i, .cpu = cpus[i], .ran_on = -1};
        int e = pthread_create(&th[i], NULL, member_main, &ms[i]);
        if (e != 0) {
            rc = -e;
            set_failure(failed, "pthread_create", cpus[i]);
            team.stop = 1; /* the started threads leave at the gate without working */
            break;
        }
        started++;
    }
    spin_until(&team.ready, started);
    __atomic_store_n(&team.go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < started && rc == 0; i++)
        if (ms[i].rc != 0) {
            rc = ms[i].rc;
            set_failure(failed, ms[i].failed, ms[i].cpu);
        }
    if (ran_on != NULL)
        for (int i = 0; i < n; i++)
            ran_on[i] = ms[i].ran_on;
    free(ms);
    free(th);
    return rc;
}
