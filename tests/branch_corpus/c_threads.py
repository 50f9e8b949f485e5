"""Torture corpus: the same branchy code run in several threads at once, and a thread pool."""

import threading
from concurrent.futures import ThreadPoolExecutor


def work(seed, out):
    total = 0
    for i in range(2000):
        if (i * seed) % 7 == 0:
            total += 1
        elif i % 11 == 0:
            total -= 1
        if seed > 3:
            total ^= 1
    out.append(total)


def pooled(x):
    if x % 2:
        return x
    try:
        if x == 4:
            raise ValueError(x)
    except ValueError:
        return -x
    return 0


results = []
threads = [threading.Thread(target=work, args=(s, results)) for s in range(1, 5)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with ThreadPoolExecutor(max_workers=3) as pool:
    list(pool.map(pooled, range(8)))
