"""A cell with a decorated class.

The decorator line and the class line run; the class body runs.

Fixed (a regression test now): when `%load_ext nbcov` ran pytest's assertion rewriting on
every cell, a cell starting with a decorated class failed to compile, as a cell starting with a
comment did (the added imports sat at the class line, with no end line).

The last cell is the driver's part every sample has: it leaves a line and a branch missed.
"""
# %%
def register(cls):
    cls.registered = True
    return cls
# %%
@register
class Plugin:
    name = "plugin"
# %%
def unused(value):
    if value:
        return 1
    return 2
unused(0)
