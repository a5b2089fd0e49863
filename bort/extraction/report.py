"""The extraction's report: the ranked table (CSV and markdown) and a PNG plot of parameters against inference
cost, coloured by the error surrogate, with the pick and the maximum point T marked."""
import csv
import math
import os

from ..io_utils import atomic_open, atomic_path

COLUMNS = ("rank", "key", "num_layers", "num_heads", "units", "hidden_size", "params_effective", "params_total",
           "ops", "time_s", "p_ratio", "i_ratio", "lower_bound", "e_star", "e_ratio", "w", "train_seconds")


def _cell(value):
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_table(rows, csv_path, markdown_path, title=None, notes=()):
    """rows: dicts with (some of) COLUMNS; columns no row has are left out."""
    columns = [c for c in COLUMNS if any(row.get(c) not in (None, "") for row in rows)]
    with atomic_open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    lines = [f"# {title}", ""] if title else []
    lines += [f"- {note}" for note in notes] + ([""] if notes else [])
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    with atomic_open(markdown_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return csv_path, markdown_path


def plot(rows, reference, path, param_kind="effective", speed_kind="ops", pick=None, marked=None, title=None):
    """Scatter of p* against i* (log-log); colour = ê where measured, grey where not; star = pick, X = T;
    `marked` {label: key} adds labelled rings (e.g. the released Bort)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_name, y_name = f"params_{param_kind}", ("ops" if speed_kind == "ops" else "time_s")
    x_label = f"parameters ({param_kind})"
    y_label = "operations per sequence" if speed_kind == "ops" else "inference time (s, median)"
    figure, axes = plt.subplots(figsize=(7.5, 5.5), dpi=100)
    usable = [r for r in rows if r.get(x_name) and r.get(y_name)]
    scored = [r for r in usable if r.get("e_ratio") is not None]
    unscored = [r for r in usable if r.get("e_ratio") is None]
    if unscored:
        axes.scatter([r[x_name] for r in unscored], [r[y_name] for r in unscored], c="lightgrey", s=18,
                     label="not trained (pruned by the bound)" if scored else "candidates", edgecolors="none")
    if scored:
        points = axes.scatter([r[x_name] for r in scored], [r[y_name] for r in scored],
                              c=[r["e_ratio"] for r in scored], cmap="viridis_r", s=28, edgecolors="none")
        figure.colorbar(points, ax=axes, label="ê = e*(ξ) / e*(T)  (error surrogate)")
    by_key = {r["key"]: r for r in usable}
    if pick in by_key:
        axes.scatter([by_key[pick][x_name]], [by_key[pick][y_name]], marker="*", s=300, facecolors="none",
                     edgecolors="red", linewidths=1.5, label=f"pick {pick}")
    for label, key in (marked or {}).items():
        if key in by_key:
            axes.scatter([by_key[key][x_name]], [by_key[key][y_name]], marker="o", s=160, facecolors="none",
                         edgecolors="black", linewidths=1.5, label=f"{label} {key}")
    if reference and reference.get(x_name) and reference.get(y_name):
        axes.scatter([reference[x_name]], [reference[y_name]], marker="X", s=120, c="black", label="T (teacher)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    if title:
        axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return path


def pareto_front(rows, x_name, y_name):
    """Keys of the rows no other row beats on both x and y (smaller is better)."""
    front, best_y = [], math.inf
    for row in sorted(rows, key=lambda r: (r[x_name], r[y_name], r["key"])):
        if row[y_name] < best_y:
            front.append(row["key"])
            best_y = row[y_name]
    return front


def write_report(result, settings, out_dir, title=None):
    """ranking.csv, ranking.md and plot.png in `out_dir`; returns their paths."""
    notes = [f"pick: {result.pick} (W = {result.pick_w:.6g})",
             f"evaluated {result.evaluated} of {result.space_size} candidates; stopped: {result.stopped}",
             f"W-coefficient: {settings.w.form} (alpha={settings.w.alpha}, beta={settings.w.beta}, "
             f"gamma={settings.w.gamma}); epsilon={settings.epsilon}; interval_size={settings.interval_size}; "
             f"p* {settings.param_kind}; i* {settings.speed_kind} at sequence length {settings.seq_len}",
             f"T: p* effective {result.reference['params_effective']}, total {result.reference['params_total']}, "
             f"ops {result.reference['ops']}, e*(T) {result.reference['e_star']:.6g}"]
    paths = write_table(result.rows, os.path.join(out_dir, "ranking.csv"), os.path.join(out_dir, "ranking.md"),
                        title=title or "Subarchitecture extraction", notes=notes)
    png = plot(result.rows, result.reference, os.path.join(out_dir, "plot.png"), settings.param_kind,
               settings.speed_kind, pick=result.pick, title=title)
    return dict(csv=paths[0], markdown=paths[1], plot=png)
