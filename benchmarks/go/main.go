// The Go side of pygoro's benchmark table (benchmarks/run.py).
//
//	go run . [-quick] [workload ...]
//
// Runs each named workload (all when none is named) and prints one JSON
// object per line: {"workload": ..., "value": ..., "unit": ...}. The
// workloads mirror tests/c/helpers/bench.c and benchmarks/impl_pygoro.py;
// their sizes come from benchmarks/workloads.py through -n flags set by the
// runner, with defaults here for running by hand.
package main

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

var quick = flag.Bool("quick", false, "small sizes, for a smoke test")

type result struct {
	Workload string  `json:"workload"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Note     string  `json:"note,omitempty"`
}

func emit(r result) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

// size returns full, or small with -quick.
func size(full, small int) int {
	if *quick {
		return small
	}
	return full
}

// best runs f (which returns elapsed time for n ops) rounds times and
// returns the fastest per-op time in ns: the least disturbed by the noise of
// a shared machine, as for the Python rows.
func best(rounds, n int, f func(n int) time.Duration) float64 {
	f(n / 10) // warm up
	m := time.Duration(1 << 62)
	for i := 0; i < rounds; i++ {
		if d := f(n); d < m {
			m = d
		}
	}
	return float64(m.Nanoseconds()) / float64(n)
}

func spawnJoin(n int) time.Duration {
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { wg.Done() }()
		}
	}()
	wg.Wait()
	return time.Since(t0)
}

func pingPong(n int) time.Duration {
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	go func() {
		defer wg.Done()
		v := 0
		for i := 0; i < n; i++ {
			ping <- v
			v = <-pong
		}
	}()
	wg.Wait()
	return time.Since(t0)
}

func buffered(n int) time.Duration {
	c := make(chan int, 128)
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() {
		defer wg.Done()
		sum := 0
		for v := range c {
			sum += v
		}
		if sum != n*(n-1)/2 {
			panic("lost items")
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			c <- i
		}
		close(c)
	}()
	wg.Wait()
	return time.Since(t0)
}

func inGoroutine(f func()) time.Duration {
	done := make(chan time.Duration)
	go func() {
		t0 := time.Now()
		f()
		done <- time.Since(t0)
	}()
	return <-done
}

func select2(n int) time.Duration {
	return inGoroutine(func() {
		a, b := make(chan int, 1), make(chan int, 1)
		for i := 0; i < n; i++ {
			a <- 1
			b <- 2
			select {
			case <-a:
				<-b
			case <-b:
				<-a
			}
		}
	})
}

func selectDefault(n int) time.Duration {
	return inGoroutine(func() {
		c := make(chan int)
		for i := 0; i < n; i++ {
			select {
			case <-c:
				panic("empty channel ready")
			default:
			}
		}
	})
}

func timerStop(n int) time.Duration {
	return inGoroutine(func() {
		for i := 0; i < n; i++ {
			t := time.NewTimer(time.Hour)
			if !t.Stop() {
				panic("timer not pending")
			}
		}
	})
}

func mutex(workers int) func(n int) time.Duration {
	return func(n int) time.Duration {
		var mu sync.Mutex
		var wg sync.WaitGroup
		counter := 0
		per := n / workers
		t0 := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return time.Since(t0)
	}
}

// cancelFanout: a parent context with n children, each watched by its own
// goroutine; cancel the parent and wait until every child has seen Done.
// One op is the whole fan-out (build + cancel + all woken).
func cancelFanout(children int) func(n int) time.Duration {
	return func(n int) time.Duration {
		t0 := time.Now()
		for r := 0; r < n; r++ {
			parent, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(children)
			for i := 0; i < children; i++ {
				ctx, cc := context.WithCancel(parent)
				go func() {
					defer wg.Done()
					defer cc()
					<-ctx.Done()
				}()
			}
			cancel()
			wg.Wait()
		}
		return time.Since(t0)
	}
}

// cancelParked mirrors benchmarks/test_context.py (the figure): a
// parent with `children` derived contexts, one goroutine waiting on each
// child's Done(); once every goroutine has signalled ready and had the time
// to block (100 µs; plus `gap` when set), the clock runs from cancel() until
// the last one has finished. Unlike cancelFanout, nothing of the build is
// timed. Returns the best ns per child of `rounds` rounds.
func cancelParked(children, rounds int, gap time.Duration) float64 {
	bestNs := int64(1 << 62)
	for r := 0; r <= rounds; r++ { // round 0 warms up
		parent, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{}, children)
		finished := make(chan struct{})
		var left sync.WaitGroup
		left.Add(children)
		cancels := make([]context.CancelFunc, children)
		for i := 0; i < children; i++ {
			ctx, cc := context.WithCancel(parent)
			cancels[i] = cc
			go func() {
				ready <- struct{}{}
				<-ctx.Done()
				left.Done()
			}()
		}
		for i := 0; i < children; i++ {
			<-ready
		}
		time.Sleep(100 * time.Microsecond)
		if gap > 0 {
			time.Sleep(gap)
		}
		go func() { left.Wait(); close(finished) }()
		t0 := time.Now()
		cancel()
		<-finished
		d := time.Since(t0).Nanoseconds()
		for _, c := range cancels {
			c()
		}
		if r > 0 && d < bestNs {
			bestNs = d
		}
	}
	return float64(bestNs) / float64(children)
}

// timers: n goroutines each sleep d; the wall time until all are done.
func timers(n int, d time.Duration) float64 {
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			time.Sleep(d)
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / 1e6
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	var size, rss int64
	fmt.Sscan(string(b), &size, &rss)
	return rss * int64(os.Getpagesize())
}

// rssParked: bytes of RSS per goroutine blocked on a channel receive.
func rssParked(n int) float64 {
	gate := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	runtime.GC()
	before := rssBytes()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-gate
			done.Done()
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond)
	after := rssBytes()
	close(gate)
	done.Wait()
	return float64(after-before) / float64(n)
}

// cpuWork: jobs buffers of 1 MiB hashed (or compressed) by one goroutine
// per core; MB/s, and the speedup over running them one after another.
func cpuWork(jobs int, work func([]byte)) (float64, string) {
	buf := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(buf)
	for i := range buf[:len(buf)/2] { // half compressible, as in the Python rows
		buf[i] = byte(i % 7)
	}
	work(buf)
	s0 := time.Now()
	for i := 0; i < jobs; i++ {
		work(buf)
	}
	serial := time.Since(s0)
	jobc := make(chan int, jobs)
	for i := 0; i < jobs; i++ {
		jobc <- i
	}
	close(jobc)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobc {
				work(buf)
			}
		}()
	}
	wg.Wait()
	par := time.Since(t0)
	note := fmt.Sprintf("%.2f× serial on %d cores", serial.Seconds()/par.Seconds(), runtime.NumCPU())
	return float64(jobs) * 1.048576 / par.Seconds(), note
}

// service: clients concurrent requests loops; each request fans out 50
// backend calls sleeping 1-5 ms under an errgroup-style group with a
// context deadline. Reports requests/s and p99 latency.
func service(requests, clients, fanout int, deadline time.Duration) (float64, float64) {
	var mu sync.Mutex
	lat := make([]float64, 0, requests)
	next := make(chan int, requests)
	for i := 0; i < requests; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	t0 := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for range next {
				s := time.Now()
				if err := request(rng, fanout, deadline); err != nil {
					panic(err)
				}
				d := time.Since(s)
				mu.Lock()
				lat = append(lat, float64(d.Nanoseconds())/1e6)
				mu.Unlock()
			}
		}(int64(c))
	}
	wg.Wait()
	el := time.Since(t0).Seconds()
	sort.Float64s(lat)
	p99 := lat[(len(lat)*99+99)/100-1]
	return float64(requests) / el, p99
}

// request is errgroup.WithContext + g.Go per backend call + g.Wait, written
// out with the standard library (golang.org/x/sync is not vendored here).
func request(rng *rand.Rand, fanout int, deadline time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < fanout; i++ {
		d := time.Duration(1000+rng.Intn(4001)) * time.Microsecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				once.Do(func() { first = ctx.Err(); cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}

// mutexBystander is mutex(workers) with one more goroutine sleeping 200 us
// in a loop: returns ns per Lock+Unlock and how late (ns) each of the
// sleeper's wakeups ran, sorted.
func mutexBystander(workers, n int) (float64, []float64) {
	stop := make(chan struct{})
	done := make(chan []float64)
	go func() {
		var late []float64
		for {
			select {
			case <-stop:
				done <- late
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(200 * time.Microsecond)
			late = append(late, float64((time.Since(t0) - 200*time.Microsecond).Nanoseconds()))
		}
	}()
	d := mutex(workers)(n)
	close(stop)
	late := <-done
	sort.Float64s(late)
	return float64(d.Nanoseconds()) / float64(n), late
}

func main() {
	flag.Parse()
	names := flag.Args()
	all := []string{"spawn_join", "pingpong", "buffered", "select2", "select_default",
		"timer_stop", "mutex_uncontended", "mutex_contended", "cancel_fanout", "cancel_parked",
		"cancel_parked_idle", "timers", "rss_parked", "sha256", "zlib", "service"}
	if len(names) == 0 {
		names = all
	}
	for _, w := range names {
		switch w {
		case "spawn_join":
			emit(result{w, best(5, size(200000, 10000), spawnJoin), "ns/op", ""})
		case "pingpong":
			emit(result{w, best(5, size(200000, 5000), pingPong), "ns/op", ""})
		case "buffered":
			emit(result{w, best(5, size(2000000, 20000), buffered), "ns/op", ""})
		case "select2":
			emit(result{w, best(5, size(1000000, 10000), select2), "ns/op", ""})
		case "select_default":
			emit(result{w, best(5, size(5000000, 10000), selectDefault), "ns/op", ""})
		case "timer_stop":
			emit(result{w, best(5, size(1000000, 10000), timerStop), "ns/op", ""})
		case "mutex_uncontended":
			emit(result{w, best(5, size(5000000, 10000), mutex(1)), "ns/op", ""})
		case "mutex_contended":
			emit(result{w, best(5, size(2000000, 16000), mutex(8)), "ns/op", ""})
		case "mutex_contended_bystander":
			// not in `all`: benchmarks/test_sync.py asks for it
			mutex(8)(size(200000, 1600))
			for i := 0; i < 3; i++ {
				v, late := mutexBystander(8, size(2000000, 16000))
				p := func(q float64) float64 { return late[int(q*float64(len(late)-1))] / 1e3 }
				emit(result{w, v, "ns/op", fmt.Sprintf("bystander late p50 %.0f us, p90 %.0f us, max %.0f us, %d wakeups", p(0.5), p(0.9), p(1), len(late))})
			}
		case "cancel_fanout":
			emit(result{w, best(5, size(20, 2), cancelFanout(1000)) / 1e3, "us/op", ""})
		case "cancel_parked":
			emit(result{w, cancelParked(1000, size(10, 2), 0), "ns/child", ""})
		case "cancel_parked_idle":
			emit(result{w, cancelParked(1000, size(10, 2), 20*time.Millisecond), "ns/child", "after 20 ms idle"})
		case "timers":
			m := 1e18
			for i := 0; i < 3; i++ {
				if v := timers(10000, 10*time.Millisecond); v < m {
					m = v
				}
			}
			emit(result{w, m, "ms", ""})
		case "rss_parked":
			emit(result{w, rssParked(size(100000, 1000)), "B/unit", ""})
		case "sha256":
			v, note := cpuWork(size(128, 4), func(b []byte) { sha256.Sum256(b) })
			emit(result{w, v, "MB/s", note})
		case "zlib":
			v, note := cpuWork(size(16, 2), func(b []byte) {
				var out bytes.Buffer
				z := zlib.NewWriter(&out)
				z.Write(b)
				z.Close()
			})
			emit(result{w, v, "MB/s", note})
		case "service":
			rps, p99 := service(size(300, 20), 20, 50, time.Second)
			emit(result{"service_rps", rps, "req/s", ""})
			emit(result{"service_p99", p99, "ms", ""})
		default:
			fmt.Fprintf(os.Stderr, "unknown workload %q\n", w)
			os.Exit(2)
		}
	}
}
