"""A cell that starts with a string literal.

coverage.py reads a string as a module's first statement as its docstring, not a statement; in
the module this string is an ordinary statement in the middle of the code, and it runs.

Fixed (a regression test now): a string at the top of a cell with more code after it is counted
as a statement; a cell that is only a string stays a docstring (the module's, given a cell of its own).

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
x = 1
# %%
"a string statement"
y = 2
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
