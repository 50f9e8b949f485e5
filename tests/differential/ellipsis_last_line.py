"""A cell whose last line is a `...` stub.

coverage.py's default exclusion for `...` also marks the line after it; the cell's analysed code
ends with a newline, so the cell reports an excluded line one past its end.

Fixed (a regression test now): lines past a cell's end are not reported.

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
x = 0
# %%
def stub():
    ...
# %%
y = 2
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
