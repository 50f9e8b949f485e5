"""Exclusions with `# pragma: no cover` inside and around functions and classes."""


def debug_only():  # pragma: no cover
    print("debugging")
    return 1


class Unused:  # pragma: no cover
    def method(self):
        return 2


def partly(x):
    if x > 0:
        return "pos"
    elif x < 0:  # pragma: no cover
        return "neg"
    else:
        return "zero"


def with_excluded_else(flag):
    if flag:
        result = 1
    else:  # pragma: no cover
        result = 2
    return result


def excluded_line(items):
    total = 0
    for item in items:
        total += item
        print(item)  # pragma: no cover
    return total


if __name__ == "__main__":
    assert partly(1) == "pos"
    assert with_excluded_else(True) == 1
    assert excluded_line([]) == 0
