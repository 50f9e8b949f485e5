"""A one-line def on the first line of a cell, followed by more code.

In the module the def line is a branch: on to the next statement, or out of the function (never
taken here: the function is never called).

Fixed (a regression test now): the function's exit and the def statement's own (IPython runs it as a
module starting on line 1) were both 1->-1, so the function read as run; such a module is now
compiled with a distinct `co_firstlineno` (`compiler.distinct_module`).

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
x = 0
# %%
def never_called(): return 1
y = 2
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
