"""Copy-on-write configuration in an atomic.Value.

Readers are many and frequent, reloads are rare. Instead of a lock around a
shared, mutable config, the current config is an immutable snapshot held in
an atomic.Value: a reader load()s it once and uses that snapshot for the
whole request; the reloader copies the current snapshot, changes the copy,
and store()s it. A reader sees the old snapshot or the new one, never a
half-updated mix, and never waits for the writer.

Each snapshot here carries a version and fields derived from it, so a torn
config (fields from two versions) would be detectable. 8 readers each read
2,000 times while one goroutine reloads 200 times. (With several
reloaders, publish with compare_and_swap(old, new) and retry on failure, so
that no reload overwrites another.)
"""

from types import MappingProxyType

from pygoro import errgroup, runtime
from pygoro.sync import atomic

READERS, READS, RELOADS = 8, 2_000, 200


def settings(version):
    """The fields a reload changes, all derived from the version so that a
    config mixing two versions would be detectable."""
    return {
        "version": version,
        "timeout_ms": 100 + version,
        "replicas": [f"db{version}-{i}" for i in range(3)],
        "checksum": version * 7,
    }


def consistent(cfg):
    return dict(cfg) == {"service": "search", **settings(cfg["version"])}


def main():
    current = atomic.Value()
    # an immutable snapshot: a read-only view of a dict nobody else holds
    current.store(MappingProxyType({"service": "search", **settings(0)}))

    reads = atomic.Int64()
    torn = atomic.Int64()
    backwards = atomic.Int64()

    def reader():
        last = -1
        for _ in range(READS):
            cfg = current.load()  # one snapshot per "request"
            reads.add(1)
            if not consistent(cfg):
                torn.add(1)
            if cfg["version"] < last:
                backwards.add(1)
            last = cfg["version"]
            runtime.gosched()  # let the reloader and the other readers run

    def reloader():
        for _ in range(RELOADS):
            old = current.load()
            new = dict(old)  # copy ...
            new.update(settings(old["version"] + 1))  # ... modify the copy ...
            current.store(MappingProxyType(new))  # ... publish it whole
            runtime.gosched()

    g = errgroup.Group()
    for _ in range(READERS):
        g.go(reader)
    g.go(reloader)
    g.wait()

    print(f"{READERS} readers, {reads.load()} reads, {RELOADS} reloads")
    print("torn configs seen:", torn.load())
    print("a reader saw the version go backwards:", backwards.load())
    print("final version:", current.load()["version"])


if __name__ == "__main__":
    main()
