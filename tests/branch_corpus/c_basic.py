"""Torture corpus: conditions (if/elif/else, one-line ifs, multi-line tests, joins, boolean operators)."""


def sign(x):
    if x > 0:
        return 1
    elif x < 0:
        return -1
    return 0


def join_point(x):
    total = 0
    if x:
        total += 1
    total += 2
    if x > 5: total += 10
    if x > 50: total += 100
    else: total -= 1
    return total


def multi_line(a, b, c):
    if (a and
            b):
        r = 1
    elif (a
          or c):
        r = 2
    else:
        r = 3
    if a and b and \
            c:
        r += 10
    return r


def nested(a, b):
    out = []
    if a:
        if b:
            out.append("ab")
        else:
            out.append("a")
        if b > 2:
            out.append("b2")
    else:
        if b:
            out.append("b")
    return out


def expressions(xs):
    ys = [x if x > 1 else -x for x in xs]
    z = xs and xs[0] or None
    w = (len(xs) > 2
         and xs[2]
         or 7)
    if (n := len(xs)) > 3:
        w += n
    assert n >= 0
    return ys, z, w


def only_if_at_end(x):
    y = x * 2
    if y > 10:
        y = 10


def chain(x):
    if 0 < x < 10:
        return "small"
    if x in (10, 20) or x not in range(100):
        return "odd"
    return "big"


def never_called(x):
    if x:
        return 1
    return 2


def constant_tests(x):
    if True:
        x += 1
    if False:
        x -= 1
    if __debug__:
        x *= 2
    while False:
        x = 0
    return x


def pass_bodies(x):
    if x:
        pass
    else:
        pass
    if x > 1:
        ...
    return x


for v in (-3, 0, 4, 7, 60):
    sign(v)
    join_point(v)
    chain(v)
    only_if_at_end(v)
for a, b, c in ((1, 1, 0), (0, 0, 1), (0, 0, 0), (1, 0, 1)):
    multi_line(a, b, c)
nested(1, 3)
nested(0, 0)
nested(1, 0)
expressions([])
expressions([1, 2, 3, 4])
constant_tests(1)
pass_bodies(0)
pass_bodies(3)
if sign(1) == 1:
    top = 1
else:
    top = 2
if top: top += 1
