"""A cell that starts with a branch, one way of which is never taken.

The `if` is always true: in the module its false branch (to the next statement, or out) is
missing; the cell must say the same.

Fixed (a regression test now): when `%load_ext nbcov` ran pytest's assertion rewriting on
every cell, the imports it adds ran as a statement of their own at line 1, whose exit nbcov took
for the `if`'s: the false branch was reported taken.

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
flag = True
# %%
if flag:
    x = 1
# %%
if flag:
    x = 2
y = 3
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
