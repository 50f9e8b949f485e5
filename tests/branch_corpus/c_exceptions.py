"""Torture corpus: try/except/else/finally, raise, with, exits by exception."""

import contextlib


class Boom(Exception):
    pass


def may_raise(x):
    if x < 0:
        raise Boom(x)
    return x


def try_except(x):
    try:
        y = may_raise(x)
    except Boom:
        y = 0
    except (KeyError, ValueError) as exc:
        y = str(exc)
    else:
        y += 1
    finally:
        x = None
    return y


def one_line_raise(x):
    try:
        if x: raise ValueError(x)
        r = 1
    except ValueError:
        r = 2
    return r


def last_statement_raises(x):
    if may_raise(x):
        return 1


def finally_flows(xs):
    out = []
    for x in xs:
        try:
            if x == 1:
                continue
            if x == 2:
                break
            if x == 3:
                return out
            out.append(x)
        finally:
            out.append("f")
    return out


def finally_with_if(x):
    try:
        if x:
            y = 1
    finally:
        z = 2
    return z


def nested_try(x):
    try:
        try:
            may_raise(x)
        except Boom:
            raise KeyError("k")
        finally:
            pass
    except KeyError:
        return "key"
    return "ok"


def reraise(x):
    try:
        may_raise(x)
    except Boom:
        if x < -5:
            raise
        return "handled"
    return "fine"


def with_statements(x):
    with contextlib.suppress(Boom):
        may_raise(x)
        x += 1
    with open(__file__) as f, contextlib.nullcontext():
        first = f.readline()
    return x, first[:3]


def except_star(x):
    try:
        if x:
            raise ExceptionGroup("g", [Boom(1), KeyError(2)])
    except* Boom:
        r = 1
    except* KeyError:
        r = 2
    else:
        r = 0
    return r


for v in (-10, -1, 0, 3):
    try_except(v)
    one_line_raise(v)
    nested_try(v)
    with_statements(v)
    try:
        reraise(v)
    except Boom:
        pass
    try:
        last_statement_raises(v)
    except Boom:
        pass
finally_flows([0, 1, 4, 2, 5])
finally_flows([3])
finally_flows([])
finally_with_if(0)
finally_with_if(1)
except_star(0)
except_star(1)
try:
    may_raise(-1)
except Boom:
    top = 1
