"""Collatz helpers: the notebooks import them in the kernel and in the Pythons they start."""


def collatz(n):
    steps = [n]  # runs in a worker
    while n != 1:  # runs in a worker
        n = n // 2 if n % 2 == 0 else 3 * n + 1  # runs in a worker
        steps.append(n)  # runs in a worker
    return steps  # runs in a worker


def collatz_len(n):
    length = 1
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        length += 1
    return length
