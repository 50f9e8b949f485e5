"""Torture corpus: match statements with guards, or-patterns, classes, mappings, sequences."""

from dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: int


def classify(v):
    match v:
        case 0 | 1:
            return "small"
        case int(n) if n < 0:
            return "neg"
        case int(n) if (n > 100
                        and n % 2 == 0):
            return "big even"
        case [x, y, *rest] if rest:
            return "long"
        case [x, y]:
            return "pair"
        case {"k": val, **others}:
            return "map"
        case Point(x=0, y=yy):
            return "on y axis"
        case Point(x=xx, y=0) | Point(x=xx, y=1):
            return "near x axis"
        case str() as s if s:
            return "str"
        case _:
            return "other"


def no_default(cmd):
    result = None
    match cmd.split():
        case ["go", direction]:
            result = direction
        case ["quit"] | ["exit"]:
            result = "bye"
    return result


def nested_match(pair):
    match pair:
        case (a, b):
            match a:
                case 1:
                    return b
                case _:
                    pass
    return None


for v in (0, 1, -4, 7, 102, 103, [1, 2], [1, 2, 3], {"k": 1}, Point(0, 3), Point(2, 1), "s", "", 3.5):
    classify(v)
no_default("go north")
no_default("exit")
no_default("jump")
nested_match((1, 2))
nested_match((2, 2))
nested_match(5)
