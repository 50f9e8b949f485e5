"""A cell whose last line is a `...` stub.

coverage.py's default exclusion for `...` also marks the line after it; the cell's analysed code
ends with a newline, so the cell reports an excluded line one past its end.
"""
# %%
x = 0
# %%
def stub():
    ...
# %%
y = 2
