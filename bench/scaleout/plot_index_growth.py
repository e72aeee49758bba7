"""Plots index_growth.sh's TSVs (instances in the index, instances/s).

usage: plot_index_growth.py out.png index_growth_<engine>[_<shared_buffers>].tsv ...
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

out, tsvs = sys.argv[1], sys.argv[2:]


def label(path):
    name = path.rsplit("/", 1)[-1].removeprefix("index_growth_").removesuffix(".tsv")
    engine, _, buffers = name.partition("_")
    engine = {"sqlite": "SQLite", "postgres": "PostgreSQL"}.get(engine, engine)
    if engine == "PostgreSQL":
        return f"{engine}, shared_buffers {buffers or '128MB (default)'}"
    return engine


def read(path):
    rows = [line.split("\t") for line in open(path).read().splitlines()[1:] if line.strip()]
    return [int(r[0]) / 1000 for r in rows], [float(r[1]) for r in rows]


fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
for path in sorted(tsvs):
    x, y = read(path)
    ax.plot(x, y, marker="o", markersize=3, label=f"Telediag, {label(path)}")
ax.scatter([0, 200], [330, 22], marker="x", color="grey", label="Orthanc, SQLite: its own benchmark's first and 200,000th (~330, ~22)")
ax.set_xlabel("instances already in the index (thousands)")
ax.set_ylabel("instances indexed per second")
ax.set_title("Index ingest rate as the index grows (C-STORE's statements, 8-row group commits)")
ax.set_ylim(bottom=0)
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(out)
