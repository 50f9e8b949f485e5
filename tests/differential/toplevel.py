"""Control flow at module level, where notebook cells start and end."""
import sys

LIMIT = 3
verbose = False
counter = 0
if verbose: print("verbose")
if LIMIT > 2: counter += 1
if not verbose: label = "quiet"
else: label = "loud"

if LIMIT > 10:
    size = "large"
elif LIMIT > 2:
    size = "medium"
else:
    size = "small"

mode = "fast" if LIMIT > 1 else "slow"
assert mode == "fast", "mode"
values = [n for n in range(LIMIT) if n]
lookup = {n: n * 2 for n in values}


def bump():
    global counter
    counter += 1
    return counter


while True:
    if bump() >= 3:
        break

for attempt in range(LIMIT):
    if attempt == 1:
        break
else:
    attempt = None

if (LIMIT > 0
        and counter > 0
        and sys.version_info >= (3, 0)):
    ready = True

checked = True
if LIMIT < 0:  # pragma: no cover
    raise SystemExit("impossible")

try:
    ratio = counter / (LIMIT - 3)
except ZeroDivisionError:
    ratio = None
else:
    ratio = round(ratio, 2)

with open(sys.executable, "rb") as handle:
    head = handle.read(1)

match values:
    case [1, *rest] if rest:
        shape = "starts with one"
    case _:
        shape = "other"

total = 0
for n in values:
    total += n
print(total)
total
