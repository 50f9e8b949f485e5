"""A cell that is only a one-line def.

In the module the def line is a branch: on to the next statement, or out of the function (never
taken here). In the cell both ways out are the exit -1, so the line is no branch at all.
"""
# %%
x = 0
# %%
def never_called(): return 1
# %%
y = 2
