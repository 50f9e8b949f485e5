"""A cell that is only a one-line def.

In the module the def line is a branch: on to the next statement, or out of the function (never
taken here). In the cell both ways out are the exit -1, so the line is no branch at all.

Not a difference (a regression test now): the comparison counts two ways out that become one arc in
the cell as one, as coverage.py analyses the cell's code (see tests/test_differential.py).

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
x = 0
# %%
def never_called(): return 1
# %%
y = 2
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
