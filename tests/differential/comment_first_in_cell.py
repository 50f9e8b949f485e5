"""A cell whose first line is a comment.

Nothing to measure on the comment line; the statement below it runs like any other.

Fixed (a regression test now): when `%load_ext nbcov` ran pytest's assertion rewriting on
every cell, the imports it adds got no end line, and such a cell failed to compile
(ValueError: AST node line range (2, 1) is not valid).

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
x = 0
# %%
# a comment first
y = 1
if y:
    z = 2
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
