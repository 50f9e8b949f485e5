"""Torture corpus: for/while loops, break/continue/else, while True, hot loops, async for."""

import asyncio


def for_break(xs, stop):
    for x in xs:
        if x == stop:
            break
        if x < 0:
            continue
    else:
        return "exhausted"
    return "broke"


def for_no_else_break(xs, stop):
    found = None
    for x in xs:
        if x == stop:
            found = x
            break
    return found


def while_loops(n):
    i = 0
    while i < n:
        i += 1
        if i == 7:
            break
    else:
        i = -i
    j = 0
    while True:
        j += 1
        if j > 3:
            break
    while n > 100:
        n -= 1
    return i, j


def hot_always_true(n):
    t = 0
    for i in range(n):
        if i >= 0:
            t += 1
    return t


def hot_always_true_followed(n):
    t = 0
    for i in range(n):
        if i >= 0:
            t += 1
        t += 2
    return t


def hot_while(n):
    t = 0
    while n:
        n -= 1
        if n % 3 == 0:
            t += 1
    return t


def nested_loops(m):
    out = 0
    for i in range(m):
        for j in range(i):
            if j == 2:
                continue
            if j == 4:
                break
            out += j
        else:
            out -= 1
    return out


def one_line_loops(xs):
    t = 0
    for x in xs: t += x
    while t > 5: t -= 5
    return t


def loop_over_generator(n):
    def gen():
        for k in range(n):
            yield k
    total = 0
    for v in gen():
        total += v
    return total


def empty_loops():
    for _ in ():
        pass
    n = 0
    while n:
        n -= 1
    return n


async def agen(n):
    for i in range(n):
        yield i
        await asyncio.sleep(0)


async def async_loops(n):
    t = 0
    async for x in agen(n):
        if x == 2:
            continue
        t += x
    async for x in agen(n):
        if x == 1:
            break
    else:
        t = -t
    return t


for_break([1, 2, 3], 2)
for_break([1, -1, 3], 9)
for_no_else_break([1, 2], 2)
for_no_else_break([1, 2], 5)
while_loops(3)
while_loops(10)
while_loops(200)
hot_always_true(500)
hot_always_true_followed(500)
hot_while(50)
nested_loops(7)
one_line_loops([3, 4, 5])
one_line_loops([])
loop_over_generator(5)
empty_loops()
asyncio.run(async_loops(4))
asyncio.run(async_loops(0))
for k in range(3):
    if k == 1:
        continue
    top = k
