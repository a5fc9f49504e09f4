/* Goroutine dumps (Go's runtime.Stack / the SIGQUIT traceback, for C).
 *
 * A dump walks sched.allg under sched.allglock and copies, per goroutine,
 * what a human needs: id, state or wait reason, how long it has waited, its
 * entry function or label, and the goroutine that created it. The copy is a
 * snapshot, not a stop-the-world: each field is read once, with a relaxed
 * atomic load where its owner may be writing it (status, wait_reason,
 * wait_since, py), so every value printed is one the goroutine really had,
 * though not necessarily all at the same instant. The list also holds the
 * Gs that died since the last dump, which we skip and unlink. Holding
 * allglock pins the list and the constant fields (goid, entry, label,
 * parent_goid): a goroutine may exit while we copy, which leaves them
 * alone, but a dead G's next life writes them under allglock
 * (go_spawn_sized), so none is reused under us.
 *
 * Nothing here knows about Python. The bridge (python/dump.c) takes the same
 * snapshot with the GIL held and adds each Python goroutine's frames; a C
 * program gets the C view from goro_dump / goro_dump_buf.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

static const char *const status_strings[] = {
    [G_IDLE] = "idle",
    [G_RUNNABLE] = "runnable",
    [G_RUNNING] = "running",
    [G_WAITING] = "waiting",
    [G_DEAD] = "dead",
};

static int cmp_goid(const void *a, const void *b)
{
    const struct g_info *x = a, *y = b;
    if (x->current != y->current)
        return x->current ? -1 : 1;
    return x->goid < y->goid ? -1 : x->goid > y->goid;
}

/* Copy up to cap entries; returns how many goroutines there are. */
static size_t snapshot_into(struct g_info *out, size_t cap, struct g *self, int64_t now)
{
    size_t n = 0;
    rtlock_lock(&sched.allglock);
    struct g *next;
    for (struct g *gp = sched.allg; gp != NULL; gp = next) {
        next = gp->alllink_next;
        uint32_t status = atomic_load_explicit(&gp->status, memory_order_relaxed);
        /* Dead and on the list: exited since the last dump (goexit_m leaves
         * the unlinking to us, off the exit path). Go's dump skips dead Gs
         * too. A G being reused turns live only under allglock, and relinks
         * itself if we unlinked it (go_spawn_sized). */
        if (status == G_DEAD) {
            allg_unlink_locked(gp);
            continue;
        }
        if (n++ >= cap)
            continue; /* keep counting: the caller retries with room for all */
        struct g_info *gi = &out[n - 1];
        gi->goid = gp->goid;
        gi->parent_goid = gp->parent_goid;
        gi->status = status;
        gi->wait_reason = __atomic_load_n(&gp->wait_reason, __ATOMIC_RELAXED);
        gi->waited_ns = -1;
        if (gi->status == G_WAITING) {
            /* wait_since comes from the coarse clock, which may lag now */
            int64_t since = __atomic_load_n(&gp->wait_since, __ATOMIC_RELAXED);
            gi->waited_ns = now > since ? now - since : 0;
        }
        gi->label = gp->label;
        gi->entry = gp->entry;
        gi->arg = __atomic_load_n(&gp->arg, __ATOMIC_RELAXED);
        gi->py = __atomic_load_n(&gp->py, __ATOMIC_RELAXED);
        gi->current = gp == self;
    }
    rtlock_unlock(&sched.allglock);
    return n;
}

struct g_info *dump_snapshot(size_t *n)
{
    struct m *mp = getm();
    struct g *self = mp ? mp->curg : NULL;
    /* Room for the goroutines counted now plus some that may start meanwhile;
     * if more started, count again. */
    size_t cap = (size_t)atomic_load_explicit(&sched.ngoroutines, memory_order_relaxed) + 16;
    for (;;) {
        struct g_info *out = malloc(cap * sizeof *out);
        if (out == NULL)
            return NULL;
        size_t got = snapshot_into(out, cap, self, nanotime());
        if (got <= cap) {
            qsort(out, got, sizeof *out, cmp_goid);
            *n = got;
            return out;
        }
        free(out);
        cap = got + got / 4 + 16;
    }
}

const char *dump_state_string(const struct g_info *gi)
{
    if (gi->status == G_WAITING) {
        const char *r = gi->wait_reason < WAIT_REASON_COUNT ? wait_reason_strings[gi->wait_reason]
                                                            : NULL;
        return r && *r ? r : "waiting";
    }
    /* A fresh G seen between allg_add and its first status store: it is
     * about to become runnable. */
    if (gi->status == G_IDLE)
        return "runnable";
    return gi->status < sizeof status_strings / sizeof *status_strings ? status_strings[gi->status]
                                                                       : "?";
}

char *dump_symbolize(const void *pc, char *buf, size_t size)
{
    Dl_info info;
    if (pc != NULL && dladdr(pc, &info) != 0) {
        if (info.dli_sname != NULL) {
            size_t off = (size_t)((uintptr_t)pc - (uintptr_t)info.dli_saddr);
            if (off == 0) /* an entry point: the name says it all */
                snprintf(buf, size, "%s", info.dli_sname);
            else
                snprintf(buf, size, "%s+0x%zx", info.dli_sname, off);
            return buf;
        }
        if (info.dli_fname != NULL) {
            const char *base = strrchr(info.dli_fname, '/');
            snprintf(buf, size, "%s+0x%zx", base ? base + 1 : info.dli_fname,
                     (size_t)((uintptr_t)pc - (uintptr_t)info.dli_fbase));
            return buf;
        }
    }
    snprintf(buf, size, "%p", pc);
    return buf;
}

/* Go prints minutes only; seconds help when reading a short-lived hang. */
static void format_waited(char *buf, size_t size, int64_t ns)
{
    double s = (double)ns / 1e9;
    if (s < 60)
        snprintf(buf, size, ", %.1f seconds", s);
    else if (s < 3600)
        snprintf(buf, size, ", %d minutes", (int)(s / 60));
    else
        snprintf(buf, size, ", %.1f hours", s / 3600);
}

/* A growable text buffer; on allocation failure it keeps what it has. */
struct text {
    char *p;
    size_t len, cap;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int k = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if (t->p != NULL && (size_t)k < room) {
            t->len += (size_t)k;
            return;
        }
        size_t cap = (t->cap + (size_t)k + 1) * 2;
        char *q = realloc(t->p, cap);
        if (q == NULL)
            return;
        t->p = q;
        t->cap = cap;
    }
}

static void format_one(struct text *t, const struct g_info *gi)
{
    char waited[48] = "";
    if (gi->waited_ns >= 0)
        format_waited(waited, sizeof waited, gi->waited_ns);
    text_printf(t, "goroutine %llu [%s%s]:\n", (unsigned long long)gi->goid,
                dump_state_string(gi), waited);
    char sym[256];
    if (gi->py != NULL)
        text_printf(t, "\tPython goroutine (pygoro.runtime.stack() shows its frames)\n");
    else if (gi->entry != NULL && gi->arg != NULL)
        text_printf(t, "\t%s(%p)\n", dump_symbolize((const void *)gi->entry, sym, sizeof sym),
                    gi->arg);
    else if (gi->entry != NULL)
        text_printf(t, "\t%s()\n", dump_symbolize((const void *)gi->entry, sym, sizeof sym));
    if (gi->label != NULL)
        text_printf(t, "\tlabel: %s\n", gi->label);
    if (gi->parent_goid != 0)
        text_printf(t, "created in goroutine %llu\n", (unsigned long long)gi->parent_goid);
    else
        text_printf(t, "created by a thread\n");
    text_printf(t, "\n");
}

/* The whole dump as a malloc'd string (NULL if out of memory). */
static char *dump_text(size_t *len)
{
    size_t n;
    struct g_info *gs = dump_snapshot(&n);
    if (gs == NULL)
        return NULL;
    struct text t = {0};
    for (size_t i = 0; i < n; i++)
        format_one(&t, &gs[i]);
    free(gs);
    if (t.p == NULL)
        t.p = calloc(1, 1);
    *len = t.len;
    return t.p;
}

size_t goro_dump_buf(char *buf, size_t size)
{
    size_t len = 0;
    char *s = dump_text(&len);
    if (s == NULL)
        return 0;
    if (buf != NULL && size > 0) {
        size_t k = len < size - 1 ? len : size - 1;
        memcpy(buf, s, k);
        buf[k] = '\0';
    }
    free(s);
    return len;
}

void goro_dump(FILE *f)
{
    size_t len = 0;
    char *s = dump_text(&len);
    if (s == NULL) {
        fputs("pygoro: goroutine dump: out of memory\n", f);
        return;
    }
    fwrite(s, 1, len, f);
    fflush(f);
    free(s);
}
