"""A branch whose other way leads into a later cell that is excluded.

In the module the arc to the excluded `if` is dropped, so line 2 of the first cell is no branch.
The cell, analysed as a module of its own, ends there: its exit is a second way out, never taken.
"""
# %%
flag = True
if flag:
    result = 1
# %%
if flag is None:  # pragma: no cover
    result = 2
