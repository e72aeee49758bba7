"""Plots index_growth.sh's two TSVs (instances in the index, instances/s)."""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sqlite, postgres, out = sys.argv[1:4]


def read(path):
    rows = [line.split("\t") for line in open(path).read().splitlines()[1:] if line.strip()]
    return [int(r[0]) / 1000 for r in rows], [float(r[1]) for r in rows]


fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
for path, label in [(sqlite, "SQLite"), (postgres, "PostgreSQL")]:
    x, y = read(path)
    ax.plot(x, y, marker="o", markersize=3, label=f"Telediag, {label}")
ax.scatter([0, 200], [330, 22], marker="x", color="grey", label="Orthanc, SQLite: its own benchmark's first and 200,000th (~330, ~22)")
ax.set_xlabel("instances already in the index (thousands)")
ax.set_ylabel("instances indexed per second")
ax.set_title("Index ingest rate as the index grows (C-STORE's statements, 8-row group commits)")
ax.set_ylim(bottom=0)
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(out)
