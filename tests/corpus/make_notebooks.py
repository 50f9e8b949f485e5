"""Writes the corpus notebooks (run `python tests/corpus/make_notebooks.py`; the .ipynb files are committed).

The notebooks imitate what real projects keep in their repositories: nbdev library notebooks,
ipytest notebooks, data-science notebooks, notebooks that start other processes. Lines that only
run in another process end with `# runs in a worker` (tests/test_corpus.py checks they are counted).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

MD = "md"
RAISES = "raises-exception"  # a cell tagged so: its error is expected (nbclient and nbcov go on)

NOTEBOOKS: dict[str, list[str | tuple[str, str]]] = {
    # -- nbdev: a tiny library, exported cells, tests in between, comment-only directive cells --------
    "00_core.ipynb": [
        (MD, "# core\n\n> Word statistics for short texts."),
        "#|default_exp core",
        "#|hide\nfrom nbtesting import *",
        "#|export\nimport math\nfrom collections import Counter",
        (MD, "## Tokenizing\n\nWords are lower-cased, punctuation around them dropped."),
        '#|export\ndef tokenize(text: str) -> list[str]:\n    "Split `text` into lower-case words."\n'
        "    words = []\n    for raw in text.split():\n        word = raw.strip(\".,;:!?\\\"'()\").lower()\n"
        "        if word:\n            words.append(word)\n    return words",
        'test_eq(tokenize("Hello, World!"), ["hello", "world"])\ntest_eq(tokenize("  ... "), [])',
        "#|export\ndef word_counts(text):\n    return Counter(tokenize(text))\n\n\n"
        'def top_words(text, n=3):\n    if n <= 0:\n        raise ValueError("n must be positive")\n'
        "    return [w for w, _ in word_counts(text).most_common(n)]",
        'test_eq(top_words("a b a c a b", 2), ["a", "b"])\ntest_fail(lambda: top_words("a", 0), contains="positive")',
        "#|export\nclass Vocab:\n    def __init__(self, words):\n        self.itos = sorted(set(words))\n"
        "        self.stoi = {w: i for i, w in enumerate(self.itos)}\n\n    def __len__(self):\n"
        "        return len(self.itos)\n\n    def encode(self, words):\n"
        "        return [self.stoi[w] for w in words if w in self.stoi]\n\n    def decode(self, ids):\n"
        "        return [self.itos[i] for i in ids]\n\n    def __repr__(self):\n"
        '        return f"Vocab({len(self)} words)"',
        'v = Vocab(tokenize("the cat sat on the mat"))\ntest_eq(len(v), 5)\n'
        'test_eq(v.decode(v.encode(["cat", "dog", "mat"])), ["cat", "mat"])\nv',
        "#|export\ndef entropy(text):\n    counts = word_counts(text)\n    total = sum(counts.values())\n"
        "    # Shannon entropy, in bits per word\n    return -sum(c / total * math.log2(c / total) for c in counts.values())",
        'test_close(entropy("a b"), 1.0)\ntest_close(entropy("a a a a"), 0.0)',
        (MD, "## Export"),
        "#|hide\n# import nbdev; nbdev.nbdev_export()",
        "",
    ],
    # nbformat 4.4: no cell ids (older notebooks, and JupyterLab keeps them so).
    "01_text.ipynb": [
        "#|default_exp text",
        (MD, "# text\n\nSlugs and wrapping."),
        "#|hide\nfrom nbtesting import test_eq, test_fail",
        "#|export\nimport re\nimport unicodedata",
        '#|export\ndef slugify(title, sep="-"):\n    text = unicodedata.normalize("NFKD", title)\n'
        '    text = text.encode("ascii", "ignore").decode()\n'
        '    text = re.sub(r"[^\\w\\s-]", "", text).strip().lower()\n    return re.sub(r"[-\\s]+", sep, text)',
        'test_eq(slugify("Hello, World!"), "hello-world")\ntest_eq(slugify("  Ünïcödé  title ", sep="_"), "unicode_title")',
        '#|export\ndef patch_to(cls):\n    "A small `fastcore.basics.patch_to`: add the function to `cls`."\n\n'
        "    def _inner(f):\n        setattr(cls, f.__name__, f)\n        return f\n\n    return _inner",
        "#|export\nclass Title:\n    def __init__(self, text):\n        self.text = text\n\n\n"
        "@patch_to(Title)\ndef slug(self):\n    return slugify(self.text)",
        'test_eq(Title("Héllo Wörld!").slug(), "hello-world")',
        "#|export\ndef wrap(text, width=20):\n    lines, line = [], \"\"\n    for word in text.split():\n"
        "        if len(line) + len(word) + 1 > width and line:\n            lines.append(line)\n"
        "            line = word\n        else:\n            line = f\"{line} {word}\".strip()\n"
        "    if line:\n        lines.append(line)\n    return lines",
        'print("\\n".join(wrap("the quick brown fox jumps over the lazy dog", 12)))',
        'test_fail(lambda: wrap(None), contains="split")',
        "#|hide\n#|eval: false\n# from nbdev.doclinks import nbdev_export\n# nbdev_export()",
    ],
    # -- ipytest: tests in cells, `%%ipytest` bodies starting with blank lines --------------------------
    "ipytest_units.ipynb": [
        (MD, "# FizzBuzz and a stack, tested in the notebook"),
        "import ipytest\nipytest.autoconfig()",
        'def fizzbuzz(n):\n    if n % 15 == 0:\n        return "FizzBuzz"\n    if n % 3 == 0:\n        return "Fizz"\n'
        '    if n % 5 == 0:\n        return "Buzz"\n    return str(n)',
        '%%ipytest -q\n\n\nimport pytest\n\n\n@pytest.mark.parametrize("n, expected", [(3, "Fizz"), (5, "Buzz"), (15, "FizzBuzz"), (7, "7")])\n'
        "def test_fizzbuzz(n, expected):\n    assert fizzbuzz(n) == expected",
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n"
        "        self.items.append(x)\n\n    def pop(self):\n        if not self.items:\n"
        '            raise IndexError("pop from empty stack")\n        return self.items.pop()',
        "%%ipytest -q\n\nimport pytest\n\n\n@pytest.fixture\ndef stack():\n    s = Stack()\n    s.push(1)\n"
        "    return s\n\n\ndef test_pop(stack):\n    assert stack.pop() == 1\n\n\ndef test_pop_empty():\n"
        '    # an empty stack raises\n    with pytest.raises(IndexError, match="empty"):\n        Stack().pop()',
        "%%ipytest -q -k pop_empty\n# only one test this time\n\ndef test_never_selected():\n    assert False",
    ],
    "ipytest_failing.ipynb": [
        "import ipytest\nipytest.autoconfig(raise_on_error=True)",
        "def mean(xs):\n    return sum(xs) / len(xs)\n\n\ndef median(xs):\n    xs = sorted(xs)\n    mid = len(xs) // 2\n"
        "    return xs[mid]  # wrong for even lengths",
        "%%ipytest -q\n\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n\n\ndef test_median_even():\n"
        "    expected = 2.5\n    assert median([1, 2, 3, 4]) == expected",
        'print("never reached: the tests above fail")',
    ],
    # In a folder of its own: pytest-cov's data (written by ipytest in the kernel) lands in the kernel's
    # working folder, and its plugin name in the data file would stop the report of every notebook there.
    "ipytest_coverage/ipytest_coverage.ipynb": [
        (MD, "ipytest measuring the tests' coverage itself (pytest-cov in the kernel)"),
        "import ipytest\nipytest.autoconfig(coverage=True)",
        "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x",
        "%%ipytest -q\n\n\ndef test_clamp():\n    assert clamp(5, 0, 10) == 5\n    assert clamp(-1, 0, 10) == 0",
        "print(clamp(11, 0, 10))",
    ],
    # -- data science: pandas, matplotlib, timing and profiling magics --------------------------------
    "pandas_analysis.ipynb": [
        (MD, "# Sales by region"),
        'import numpy as np\nimport pandas as pd\n\npd.set_option("display.width", 100)',
        'sales = pd.DataFrame(\n    {\n        "region": ["north", "south", "north", "east", "south", "east", "north", "west"],\n'
        '        "month": ["jan", "jan", "feb", "feb", "mar", "mar", "mar", "jan"],\n'
        '        "units": [12, 7, 30, 3, 18, 25, 9, 40],\n'
        '        "price": [9.5, 12.0, 9.5, 20.0, 12.0, 4.0, 9.5, 15.0],\n    }\n)\n'
        'sales["revenue"] = sales.units * sales.price\nsales.head()',
        "\n\n# pasted from another notebook: two blank lines above\nby_region = (\n"
        '    sales.groupby("region", as_index=False)\n    .agg(units=("units", "sum"), revenue=("revenue", "sum"))\n'
        '    .sort_values("revenue", ascending=False)\n)\nby_region',
        'def band(row):\n    if row.revenue > 500:\n        return "high"\n    elif row.revenue > 100:\n'
        '        return "medium"\n    return "low"\n\n\nsales["band"] = sales.apply(band, axis=1)\n'
        "sales.band.value_counts().sort_index()",
        '%timeit -n1 -r1 sales.groupby("region").revenue.sum()',
        "%%time\n\n\ntotal = 0.0\nfor _, row in sales.iterrows():\n    total += row.revenue\nprint(total)",
        'stats = %prun -q -r sales.pivot_table(index="region", columns="month", values="units", aggfunc="sum")\n'
        "print(stats.total_calls > 0)",
        'pivot = sales.pivot_table(index="region", columns="month", values="units", aggfunc="sum", fill_value=0)\n'
        'assert pivot.loc["north"].sum() == sales[sales.region == "north"].units.sum()\npivot',
        (RAISES, "%%time\n\nvalues = sales.units.tolist()\nspread = values[1] - values[1]\nratio = values[0] / spread"),
        'print(f"{len(sales)} rows, {sales.revenue.sum():.1f} revenue")',
    ],
    "matplotlib_plots.ipynb": [
        "%matplotlib inline\nimport matplotlib\nimport matplotlib.pyplot as plt\nimport numpy as np",
        'x = np.linspace(0, 2 * np.pi, 50)\nfig, ax = plt.subplots(figsize=(4, 3))\nax.plot(x, np.sin(x), label="sin")\n'
        'ax.plot(x, np.cos(x), label="cos")\nax.legend()\nax.set_title("waves")\nplt.show()',
        "def moving_average(values, window):\n    if window < 1:\n        raise ValueError(\"window must be >= 1\")\n"
        "    out = []\n    for i in range(len(values) - window + 1):\n        out.append(sum(values[i : i + window]) / window)\n"
        "    return out\n\n\nsmooth = moving_average(list(np.sin(x)), 5)\nlen(smooth)",
        "rng = np.random.default_rng(0)\nfig, axes = plt.subplots(1, 2, figsize=(6, 2.5))\n"
        "axes[0].hist(rng.normal(size=200), bins=15)\naxes[1].plot(smooth)\nfig.tight_layout()",
        'import io\n\nbuf = io.BytesIO()\nfig.savefig(buf, format="png")\nprint(buf.getbuffer().nbytes > 1000)\nplt.close("all")',
        "fig, ax = plt.subplots()\nax.plot([1, 2, 3])",
    ],
    "exploration.ipynb": [
        (MD, "Scratch work: autoreload, captured output, timed cells, top-level await."),
        "%load_ext autoreload\n%autoreload 2",
        "from IPython.display import Markdown, display\n\nfrom mathtools import collatz_len",
        "%%capture captured\n\nfor n in (6, 7, 8):\n    print(n, collatz_len(n))",
        "print(captured.stdout.splitlines()[-1])",
        'display(Markdown(f"**longest** chain under 30: {max(range(1, 30), key=collatz_len)}"))',
        "%%time\nsquares = [n * n for n in range(1000)]\n# a comment line inside a timed cell\n\nsum(squares)",
        "# TODO: plot the distribution\n# (left for later)",
        "\n\n# scratch\n",
        'if __name__ == "__main__":\n    print("running as a notebook")\nelse:\n    print("imported")',
        'import asyncio\n\nawait asyncio.sleep(0)\nprint("awaited")',
    ],
    # -- processes: shell commands, subprocess, multiprocessing pools, os.fork ------------------------
    "subprocesses.ipynb": [
        "import subprocess\nimport sys",
        "!{sys.executable} -m pip --version --disable-pip-version-check",
        '!echo "the shell says hi"',
        'result = subprocess.run([sys.executable, "report_tool.py", "3"], capture_output=True, text=True, check=True)\n'
        "print(result.stdout, end=\"\")",
        'out = subprocess.check_output([sys.executable, "-c", "import mathtools; print(mathtools.collatz(6))"], text=True)\n'
        "print(out.strip())",
        'notebooks = !ls *.ipynb\nprint("subprocesses.ipynb" in notebooks)',
    ],
    "process_pools.ipynb": [
        (MD, "The same work on every multiprocessing start method, a process pool executor and a bare fork."),
        "import multiprocessing as mp\nimport os\nfrom concurrent.futures import ProcessPoolExecutor\n\nimport workers",
        "def cube(x):\n    return x**3  # runs in a worker",
        'with mp.get_context("fork").Pool(2) as pool:\n    print(pool.map(cube, range(5)))',
        'with mp.get_context("spawn").Pool(2) as pool:\n    print(pool.map(workers.square, range(5)))',
        'with mp.get_context("forkserver").Pool(2) as pool:\n    print(sorted(pool.imap_unordered(workers.describe, [-2, 0, 3])))',
        'with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn")) as executor:\n'
        "    print(list(executor.map(workers.scale, [1, 2, 3])))",
        'with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("fork")) as executor:\n'
        "    print(sum(executor.map(cube, [1, 2, 3])))",
        "read_end, write_end = os.pipe()\npid = os.fork()\nif pid == 0:\n    os.close(read_end)\n"
        "    os.write(write_end, str(cube(4)).encode())\n    os._exit(0)  # the child leaves without saving anything\n"
        'os.close(write_end)\nwith os.fdopen(read_end) as pipe:\n    print("the child says", pipe.read())\n'
        "_, status = os.waitpid(pid, 0)\nprint(\"exit code\", os.waitstatus_to_exitcode(status))",
    ],
}

#: Written as nbformat 4.4, without cell ids.
WITHOUT_IDS = {"01_text.ipynb"}

METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "pygments_lexer": "ipython3"},
}


def build(name: str, cells: list[str | tuple[str, str]]) -> nbformat.NotebookNode:
    """One notebook; cell ids are JupyterLab-like UUIDs, the same on every run of this script."""
    nb_cells = []
    for i, cell in enumerate(cells):
        if isinstance(cell, tuple) and cell[0] == MD:
            nb_cell = new_markdown_cell(cell[1])
        elif isinstance(cell, tuple):
            nb_cell = new_code_cell(cell[1], metadata={"tags": [cell[0]]})
        else:
            nb_cell = new_code_cell(cell)
        nb_cell["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"nbcov-corpus/{name}/{i}"))
        nb_cells.append(nb_cell)
    nb = new_notebook(cells=nb_cells, metadata=METADATA)
    if name in WITHOUT_IDS:
        nb.nbformat_minor = 4
        for nb_cell in nb.cells:
            del nb_cell["id"]
    return nb


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), str(HERE / name))


if __name__ == "__main__":
    sys.exit(main())
