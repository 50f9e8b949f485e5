"""A branch whose other way leads into a later cell that is excluded.

In the module the arc to the excluded `if` is dropped, so line 2 of the first cell is no branch.
The cell, analysed as a module of its own, ends there: its exit is a second way out, never taken.

Fixed (a regression test now): a cell's exits are no arcs when the next code cell of its notebook
starts with an excluded statement (`CellFileReporter.exits_into_excluded`).

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
flag = True
if flag:
    result = 1
# %%
if flag is None:  # pragma: no cover
    result = 2
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
