"""A one-line def on the first line of a cell, followed by more code.

In the module the def line is a branch: on to the next statement, or out of the function (never
taken here: the function is never called).
"""
# %%
x = 0
# %%
def never_called(): return 1
y = 2
