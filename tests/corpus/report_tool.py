"""A command-line script the subprocess notebook runs with `sys.executable`."""

import sys


def main(argv):
    count = int(argv[1]) if len(argv) > 1 else 1  # runs in a worker
    for i in range(count):  # runs in a worker
        print(f"line {i + 1} of {count}")  # runs in a worker
    return 0  # runs in a worker


if __name__ == "__main__":
    sys.exit(main(sys.argv))  # runs in a worker
