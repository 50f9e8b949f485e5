"""Torture corpus: the constructs the engine finds hardest (exception paths, generators, odd lines)."""

import asyncio
import contextlib


def one_liner_raises(x):
    if x: y = 1 / (x - x)
    else: y = 2
    return y


async def awaited_one_liner(x):
    if x: y = await asyncio.sleep(0, x)
    else: y = -1
    return y


def try_body_many_lines(x, log):
    try:
        log.append(1)
        if x > 1:
            log.append(2)
    finally:
        log.append(3)
    try:
        log.append(int(x))
        if x:
            log.append(x / (x - 5))
    except ZeroDivisionError:
        log.append("z")
    return log


def gen_with_try(n):
    try:
        for i in range(n):
            if i == 3:
                raise KeyError(i)
            yield i
    except KeyError:
        yield -1
    finally:
        pass


def gen_thrown(n):
    for i in range(n):
        try:
            yield i
        except ValueError:
            if i:
                return
            continue


def return_in_finally(x):
    for i in range(3):
        try:
            if i == x:
                return i
        finally:
            if x < 0:
                continue
    return None


def lambdas_in_tests(xs):
    f = lambda v: v > 2
    if any(f(x) for x in xs):
        return [x for x in xs if f(x)]
    if (g := [y for y in xs if y]) and \
            len(g) > 1:
        return g
    return None


def constant_folded(x):
    if 1 + 1:
        x += 1
    while 0 * 5:
        x -= 1
    if not False:
        x *= 3
    return x


def one_liners(xs):
    for x in xs: 
        if x: continue
    while xs and xs[-1] > 10: xs = xs[:-1]
    try: v = xs[0]
    except IndexError: v = None
    with contextlib.suppress(TypeError): v = v + 1
    return v


def deep_condition(a, b, c, d):
    if ((a and not b) or
            (c and (d or
                    a))):
        return 1
    elif not (a or b or c or d):
        return 2
    return 3


async def async_stuff(n):
    class CM:
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return bool(exc[0]) and n > 1

    async with CM():
        if n == 2:
            raise ValueError
    values = [v async for v in agen(n) if v % 2]
    return values


async def agen(n):
    for i in range(n):
        try:
            yield i
        finally:
            if i == n - 1:
                await asyncio.sleep(0)


class Config:
    debug = False
    if debug:
        level = 1
    else:
        level = 2
    for name in ("a", "b"):
        if name == "a":
            first = name
    del name


def decorated_conditionally(flag):
    def deco(fn):
        return fn if flag else (lambda *a: None)

    @deco
    def inner(x):
        if x:
            return x
    return inner(1), inner(0)


def while_true_else(n):
    i = 0
    while True:
        i += 1
        if i >= n:
            break
    while i < 100:
        i *= 2
        if i > 50:
            break
    else:
        i = 0
    return i


for v in (0, 1, 2, 5):
    try:
        try_body_many_lines(v, [])
    except ZeroDivisionError:
        pass
    constant_folded(v)
    deep_condition(v > 0, v > 1, v > 2, v == 5)
    decorated_conditionally(v)
    while_true_else(v + 1)
    return_in_finally(v - 1)
for v in (1, 0):
    try:
        one_liner_raises(v)
    except ZeroDivisionError:
        pass
    asyncio.run(awaited_one_liner(v))
list(gen_with_try(2))
list(gen_with_try(6))
g = gen_thrown(5)
next(g)
g.throw(ValueError)
next(g)
try:
    g.throw(ValueError)
except StopIteration:
    pass
g2 = gen_thrown(3)
next(g2)
g2.close()
lambdas_in_tests([1, 5])
lambdas_in_tests([0, 1, 2])
lambdas_in_tests([])
one_liners([1, 0, 20])
one_liners([])
for n in (0, 2, 3):
    try:
        asyncio.run(async_stuff(n))
    except ValueError:
        pass
