"""Comprehensions, lambdas, decorators, closures, nonlocal/global, generators and yield from."""

import functools

CALLS = 0


def counted(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        global CALLS
        CALLS += 1
        return func(*args, **kwargs)
    return wrapper


def repeat(times):
    def decorate(func):
        def run(*args):
            results = [func(*args) for _ in range(times)]
            return results if times > 1 else results[0]
        return run
    return decorate


def register(cls):
    cls.registered = True
    return cls


@counted
def add(a, b):
    return a + b


@repeat(2)
@counted
def shout(word):
    return word.upper() if word else "?"


@register
class Plugin:
    pass


def make_counter(start):
    count = start

    def increment(step=1):
        nonlocal count
        count += step
        return count

    def reset():
        nonlocal count
        count = start

    return increment, reset


def comprehensions(values):
    evens = [v for v in values if v % 2 == 0]
    unique = {v % 3 for v in values}
    index = {v: i for i, v in enumerate(values) if v > 100}
    total = sum(v * v for v in values if v)
    nested = [(a, b) for a in range(2) for b in range(a, 2) if a != b]
    return evens, unique, index, total, nested


def numbers(limit):
    n = 0
    while n < limit:
        received = yield n
        if received is not None:
            n = received
        else:
            n += 1


def chain(*iterables):
    for iterable in iterables:
        yield from iterable
    return "done"


def delegate():
    result = yield from chain([1], [2, 3])
    yield result


def sort_by(items, reverse=False):
    key = (lambda item: -item[1]) if reverse else (lambda item: item[1])
    return sorted(items, key=key)


def sign(x):
    return "pos" if x > 0 else "neg" if x < 0 else "zero"


square = lambda x: x * x
pairs = [(name, square(len(name))) for name in ("a", "bb") if name]

if __name__ == "__main__":
    assert add(1, 2) == 3
    assert shout("hi") == ["HI", "HI"]
    assert Plugin.registered
    inc, reset = make_counter(10)
    assert inc() == 11
    assert comprehensions([1, 2, 3, 4])[0] == [2, 4]
    gen = numbers(5)
    assert next(gen) == 0
    assert gen.send(3) == 3
    assert list(delegate()) == [1, 2, 3, "done"]
    assert sort_by([("a", 2), ("b", 1)]) == [("b", 1), ("a", 2)]
    assert sign(5) == "pos"
