/* The C core without Python: context switch, scheduler, timers and channels
 * through the public API (plus ctx_* for the switch checks). Built and run
 * natively by tests/c/test_native.py and, cross-compiled, under qemu-aarch64
 * by run_aarch64.sh. Exits non-zero with a message on the first failure. */
#define _GNU_SOURCE
#include <fenv.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arch/context.h"
#include "pygoro.h"

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                           \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

static int64_t now_ns(void)
{
    return goro_nanotime();
}

/* ---- the switch alone ---- */

static struct goro_context main_ctx, co_ctx;
static volatile int co_round;
static volatile int co_rounding_ok = 1;

static void co_entry(void *arg)
{
    long base = (long)(intptr_t)arg;
    /* this context keeps its own rounding mode across switches */
    fesetround(FE_UPWARD);
    for (;;) {
        /* many live values across the switch: callee-saved registers */
        long a = base + co_round, b = a * 3, c = b ^ 0x5a5a, d = c + a, e = d * 7;
        ctx_switch(&co_ctx, &main_ctx);
        if (a != base + co_round - 1 || b != a * 3 || c != (b ^ 0x5a5a) || d != c + a ||
            e != d * 7)
            abort();
        if (fegetround() != FE_UPWARD)
            co_rounding_ok = 0;
    }
}

static void test_switch(void)
{
    size_t size = 256 * 1024;
    void *stack = malloc(size);
    ctx_make(&co_ctx, stack, size, co_entry, (void *)(intptr_t)1000);
    fesetround(FE_TONEAREST);
    int n = 200000;
    int64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        double x = 1.5 * i, y = x / 3.0; /* live FP values across the switch */
        co_round++;
        ctx_switch(&main_ctx, &co_ctx);
        CHECK(x == 1.5 * i && y == x / 3.0, "FP callee-saved values lost");
        CHECK(fegetround() == FE_TONEAREST, "rounding mode leaked between contexts");
    }
    int64_t dt = now_ns() - t0;
    CHECK(co_rounding_ok, "coroutine lost its rounding mode");
    printf("switch: %.1f ns per switch\n", (double)dt / (2.0 * n));
    free(stack);
}

/* ---- scheduler ---- */

static _Atomic long counter;

static void child(void *arg)
{
    (void)arg;
    atomic_fetch_add(&counter, 1);
}

static void parent(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++)
        CHECK(goro_go(child, NULL) == GORO_OK, "goro_go failed");
    atomic_fetch_add(&counter, 1);
}

static void wait_counter(long want, const char *what)
{
    int64_t deadline = now_ns() + 60LL * 1000000000;
    while (atomic_load(&counter) < want) {
        CHECK(now_ns() < deadline, "timeout waiting for %s (%ld of %ld)", what,
              atomic_load(&counter), want);
        usleep(1000);
    }
}

static void test_spawn(void)
{
    long n = 100000;
    atomic_store(&counter, 0);
    int64_t t0 = now_ns();
    goro_go(parent, (void *)(intptr_t)n);
    wait_counter(n + 1, "spawned goroutines");
    printf("spawn: %ld goroutines in %.1f ms\n", n, (now_ns() - t0) / 1e6);
}

static void yielder(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++)
        goro_gosched();
    atomic_fetch_add(&counter, 1);
}

static void test_gosched(void)
{
    atomic_store(&counter, 0);
    for (int i = 0; i < 8; i++)
        goro_go(yielder, (void *)(intptr_t)10000);
    wait_counter(8, "yielders");
    printf("gosched: ok\n");
}

static void sleeper(void *arg)
{
    (void)arg;
    goro_sleep(20 * 1000000);
    atomic_fetch_add(&counter, 1);
}

static void test_sleep(void)
{
    atomic_store(&counter, 0);
    int64_t t0 = now_ns();
    for (int i = 0; i < 200; i++)
        goro_go(sleeper, NULL);
    wait_counter(200, "sleepers");
    int64_t dt = now_ns() - t0;
    CHECK(dt >= 20 * 1000000, "slept too little: %lld ns", (long long)dt);
    printf("sleep: 200 x 20 ms in %.1f ms\n", dt / 1e6);
}

/* ---- channels ---- */

static goro_chan_t *ping, *pong;

static void ponger(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        int v;
        bool ok;
        goro_chan_recv(ping, &v, &ok);
        v++;
        goro_chan_send(pong, &v);
    }
}

static void test_channels(void)
{
    ping = goro_chan_new(sizeof(int), 0);
    pong = goro_chan_new(sizeof(int), 0);
    int n = 20000;
    goro_go(ponger, (void *)(intptr_t)n);
    int64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        int v = i, r = -1;
        bool ok;
        CHECK(goro_chan_send(ping, &v) == GORO_OK, "send");
        CHECK(goro_chan_recv(pong, &r, &ok) == GORO_OK && ok && r == i + 1, "ping-pong value");
    }
    printf("channels: thread<->goroutine ping-pong %.2f us per round trip\n",
           (now_ns() - t0) / 1e3 / n);
    CHECK(goro_chan_close(ping) == GORO_OK, "close");
    CHECK(goro_chan_close(ping) == GORO_CLOSED, "double close must fail");
    int v;
    bool ok = true;
    goro_chan_recv(ping, &v, &ok);
    CHECK(!ok, "recv on closed channel must report !ok");
    goro_chan_free(ping);
    goro_chan_free(pong);

    goro_timer_t *t = goro_timer_new(5 * 1000000, 0);
    int64_t fired;
    goro_chan_recv(goro_timer_chan(t), &fired, &ok);
    CHECK(ok && fired > 0, "timer channel");
    goro_timer_free(t);
}

int main(void)
{
    test_switch();
    CHECK(goro_runtime_start(2) == GORO_OK, "start");
    test_spawn();
    test_gosched();
    test_sleep();
    test_channels();
    printf("core_selftest: all passed\n");
    return 0;
}
