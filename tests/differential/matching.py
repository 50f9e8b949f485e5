"""Structural pattern matching: guards, or-patterns, class, sequence and mapping patterns."""

from dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: int


@dataclass
class Circle:
    center: Point
    radius: int


def describe(shape):
    match shape:
        case Point(x=0, y=0):
            return "origin"
        case Point(x=0) | Point(y=0):
            return "on an axis"
        case Point(x=x, y=y) if x == y:
            return "diagonal"
        case Circle(Point(x=cx, y=cy), radius=r) if r > 10:
            return f"big circle at {cx},{cy}"
        case Circle():
            return "circle"
        case _:
            return "unknown"


def command(words):
    match words:
        case ["go", ("north" | "south" | "east" | "west") as direction]:
            return f"going {direction}"
        case ["take", *items] if items:
            return f"taking {len(items)}"
        case ["quit" | "exit"]:
            return "bye"
        case []:
            return "nothing"
        case [first, *_]:
            return f"unknown {first}"


def config(value):
    match value:
        case {"mode": "fast", **rest}:
            return ("fast", sorted(rest))
        case {"mode": str(mode)}:
            return (mode, [])
        case int() | float() as number if number < 0:
            return ("negative", [])
        case None:
            return ("none", [])
    return ("other", [])


status = 404
match status:
    case 200 | 201:
        message = "ok"
    case 404:
        message = "missing"
    case _:
        message = "error"

if __name__ == "__main__":
    assert describe(Point(0, 0)) == "origin"
    assert describe(Point(0, 5)) == "on an axis"
    assert describe(Point(2, 2)) == "diagonal"
    assert describe(Circle(Point(1, 2), 3)) == "circle"
    assert command(["go", "north"]) == "going north"
    assert command(["quit"]) == "bye"
    assert command(["dance", "now"]) == "unknown dance"
    assert config({"mode": "fast", "level": 3}) == ("fast", ["level"])
    assert config(-1) == ("negative", [])
