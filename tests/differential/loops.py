"""Loops: for/else, while/else with break, `while True`, continue, early returns."""


def first_negative(values):
    for index, value in enumerate(values):
        if value < 0:
            break
    else:
        return None
    return index


def countdown_until(n, stop):
    while n > 0:
        if n == stop:
            found = n
            break
        n -= 1
    else:
        found = None
    return found


def collatz_steps(n):
    steps = 0
    while True:
        if n == 1:
            break
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def skip_odds(values):
    total = 0
    for value in values:
        if value % 2:
            continue
        total += value
    return total


def nested_search(grid, target):
    for row_index, row in enumerate(grid):
        for col_index, cell in enumerate(row):
            if cell == target:
                return row_index, col_index
    return None


def retry(attempts):
    tries = 0
    while tries < attempts:
        tries += 1
        if tries == 100:
            return "gave up"
    else:
        return f"tried {tries}"


def empty_loop(values):
    for _ in values:
        pass
    while values and values[0] == "never":
        values = values[1:]
    return len(values)


# Top-level loops, split across cells by the differential test.
squares = []
for number in range(5):
    if number == 3:
        continue
    squares.append(number * number)
else:
    squares.append(-1)

pending = [3, 2, 1]
while pending:
    item = pending.pop()
    if item == 99:
        break
else:
    pending = None

if __name__ == "__main__":
    assert first_negative([1, 2, -3]) == 2
    assert countdown_until(5, 3) == 3
    assert collatz_steps(6) == 8
    assert skip_odds([1, 2, 3, 4]) == 6
    assert nested_search([[1, 2], [3, 4]], 3) == (1, 0)
    assert retry(2) == "tried 2"
    assert empty_loop([]) == 0
