"""async def, await, async for, async with, async generators and comprehensions.

Driven through asyncio.run in a worker thread: in a Jupyter kernel the main thread already runs
an event loop, and asyncio.run refuses to nest. The same driver runs in the .py module.
"""

import asyncio
import threading


class Lock:
    def __init__(self, log):
        self.log = log

    async def __aenter__(self):
        await asyncio.sleep(0)
        self.log.append("locked")
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.log.append("unlocked")
        return exc_type is ValueError


async def ticker(limit):
    for i in range(limit):
        await asyncio.sleep(0)
        if i == 100:
            return
        yield i


async def fetch(key, fail=False):
    await asyncio.sleep(0)
    if fail:
        raise KeyError(key)
    return key.upper()


async def gather_all(keys):
    results = await asyncio.gather(*(fetch(k) for k in keys))
    return [r for r in results if r]


async def consume(limit, log):
    total = 0
    async for value in ticker(limit):
        if value % 2:
            continue
        total += value
    else:
        log.append("exhausted")
    async with Lock(log):
        if total > 1000:
            raise ValueError("too big")
        log.append("inside")
    squares = [v * v async for v in ticker(3) if v]
    return total, squares


async def guarded(key):
    try:
        return await fetch(key, fail=key.startswith("x"))
    except KeyError:
        return None


async def main():
    log = []
    total = await consume(5, log)
    names = await gather_all(["a", "b"])
    missing = await guarded("xyz")
    return total, names, missing, log


def run(coro):
    box = []
    worker = threading.Thread(target=lambda: box.append(asyncio.run(coro)))
    worker.start()
    worker.join()
    return box[0]


if __name__ == "__main__":
    outcome = run(main())
    assert outcome[0] == (6, [1, 4]), outcome
    assert outcome[1] == ["A", "B"]
    assert outcome[2] is None
