"""A one-line def followed by more code in the same cell.

The def statement runs and the next statement runs, but the arc between them is reported
missing; when the def is the cell's line 1, the function's exit also shows as taken though the
function is never called.
"""
# %%
x = 0
# %%
def never_called(): return 1
y = 2
# %%
z = 3
def also_never_called(): return 1
w = 4
