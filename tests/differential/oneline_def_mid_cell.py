"""A one-line def in the middle of a cell, followed by more code.

The def statement runs and the next statement runs; the function's exit is a second way out of the
def line, taken only when the function is called.

Fixed (a regression test now): the def line was counted as the function's body only, so the def
statement's way on to the next statement was reported missing.

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
x = 0
# %%
z = 3
def also_never_called(): return 1
w = 4
# %%
v = 5
def called(): return 1
called()
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
