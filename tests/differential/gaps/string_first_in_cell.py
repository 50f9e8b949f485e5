"""A cell that starts with a string literal.

coverage.py reads a string as a module's first statement as its docstring, not a statement; in
the module this string is an ordinary statement in the middle of the code, and it runs.
"""
# %%
x = 1
# %%
"a string statement"
y = 2
