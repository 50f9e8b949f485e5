"""Torture corpus: nested functions, decorators, lambdas, generators, comprehensions, classes, async."""

import asyncio
import functools


def deco(fn):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        if k.get("skip"):
            return None
        return fn(*a)
    return wrapper


def deco_args(n):
    def inner(fn):
        def wrapped(x):
            return fn(x) + n if x else fn(x)
        return wrapped
    return inner


@deco
def decorated(x):
    return x * 2


@deco_args(3)
@deco
def doubly(x):
    return x


def closures(n):
    def add(y):
        if y > n:
            return y
        return n
    lam = lambda z: z if z else n
    return [add(i) + lam(i) for i in range(n)]


def generators(n):
    def gen(k):
        for i in range(k):
            if i % 2:
                yield i
        return "done"

    def delegate(k):
        result = yield from gen(k)
        yield result

    def echo():
        received = None
        while True:
            try:
                received = yield received
            except ValueError:
                received = "caught"
            if received == "stop":
                return

    out = list(delegate(n))
    e = echo()
    next(e)
    e.send(1)
    e.throw(ValueError)
    try:
        e.send("stop")
    except StopIteration:
        pass
    g = gen(10)
    next(g)
    g.close()
    return out


def comprehensions(xs):
    a = [x for x in xs if x > 1]
    b = {x: y for x in xs for y in xs if x != y}
    c = {x for x in xs if x if x < 5}
    d = sum(x for x in xs if x)
    e = [[y for y in range(x)] for x in xs]
    f = [x
         for x in xs
         if x % 2]
    return a, b, c, d, e, f


class Shape:
    kind = "shape"
    if kind:
        tag = 1

    def __init__(self, n):
        self.n = n

    @property
    def big(self):
        return self.n > 3

    @staticmethod
    def make(n):
        return Shape(n) if n else None

    def __repr__(self):
        return f"Shape({self.n})"


def recursive(n):
    if n <= 1:
        return 1
    return n * recursive(n - 1)


async def aworker(n):
    await asyncio.sleep(0)
    if n:
        return n
    return -1


async def amain():
    results = await asyncio.gather(aworker(1), aworker(0))
    async def inner():
        for r in results:
            if r < 0:
                return r
    return await inner()


decorated(3)
decorated(3, skip=True)
doubly(0)
doubly(2)
closures(4)
generators(5)
comprehensions([])
comprehensions([1, 2, 3, 4])
s = Shape.make(5)
s.big
Shape.make(0)
repr(s)
recursive(5)
asyncio.run(amain())
