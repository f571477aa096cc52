"""Read latency as a query on the node feels it (bench/bandwidth.ts).

  readLatency.py evict FILE...   drops the files' pages from the page cache (posix_fadvise DONTNEED)
  readLatency.py probe FILE      reads 4 KiB at random aligned offsets of FILE with O_DIRECT (never from the page
                                 cache), one every 2 ms, until SIGTERM; then prints {"count","p50Ms","p99Ms","maxMs"}
"""
import json
import mmap
import os
import random
import signal
import sys
import time

BLOCK = 4096


def evict(paths):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def probe(path):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    blocks = os.fstat(fd).st_size // BLOCK
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    lat = []
    while not stop:
        off = random.randrange(blocks) * BLOCK
        t0 = time.perf_counter()
        os.preadv(fd, [buf], off)
        lat.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.002)
    lat.sort()
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None
    print(json.dumps({"count": len(lat), "p50Ms": pick(0.5), "p99Ms": pick(0.99), "maxMs": pick(1.0)}))


if __name__ == "__main__":
    if sys.argv[1] == "evict":
        evict(sys.argv[2:])
    elif sys.argv[1] == "probe":
        probe(sys.argv[2])
    else:
        sys.exit("usage: readLatency.py evict FILE... | probe FILE")
