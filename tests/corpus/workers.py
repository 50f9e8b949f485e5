"""Functions the process-pool notebook hands to spawn and forkserver workers (they must be importable)."""


def square(x):
    return x * x  # runs in a worker


def describe(x):
    if x < 0:  # runs in a worker
        return f"{x} is negative"  # runs in a worker
    elif x == 0:  # runs in a worker
        return f"{x} is zero"  # runs in a worker
    return f"{x} is positive"  # runs in a worker


def scale(x, factor=10):
    # A comment inside a worker function: never a statement.

    return x * factor  # runs in a worker
