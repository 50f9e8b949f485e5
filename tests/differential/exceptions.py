"""try/except/else/finally, raise, with, assert."""

import contextlib


class Resource:
    def __init__(self, name, log):
        self.name = name
        self.log = log

    def __enter__(self):
        self.log.append(f"enter {self.name}")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.log.append(f"exit {self.name}")
        if exc_type is KeyError:
            return True
        return False


@contextlib.contextmanager
def managed(log):
    log.append("setup")
    try:
        yield len(log)
    except ZeroDivisionError:
        log.append("handled")
        raise
    finally:
        log.append("teardown")


def parse_int(text):
    try:
        value = int(text)
    except ValueError:
        return None
    except TypeError as exc:
        raise RuntimeError("bad type") from exc
    else:
        value += 1
    finally:
        text = None
    return value


def divide(a, b):
    try:
        result = a / b
    except (ZeroDivisionError, OverflowError):
        result = float("inf")
    return result


def nested(log, fail):
    with Resource("outer", log) as outer, Resource("inner", log):
        if fail:
            raise KeyError(outer.name)
        log.append("body")
    return log


def check(value):
    assert value >= 0, "negative"
    assert isinstance(value, int)
    return value * 2


def reraise(kind):
    try:
        try:
            raise kind("x")
        except ValueError:
            return "value"
        finally:
            pass
    except LookupError:
        return "lookup"


def using_suppress(items):
    with contextlib.suppress(IndexError):
        return items[3]
    return "short"


log = []
with managed(log) as size:
    log.append(size)

try:
    with managed(log):
        1 / 0
except ZeroDivisionError:
    caught = True
else:
    caught = False
finally:
    log.append("done")

if __name__ == "__main__":
    assert parse_int("41") == 42
    assert parse_int("x") is None
    assert divide(1, 0) == float("inf")
    assert nested([], fail=True)[-1] == "exit outer"
    assert check(2) == 4
    assert reraise(ValueError) == "value"
    assert using_suppress([1]) == "short"
