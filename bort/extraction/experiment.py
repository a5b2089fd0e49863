"""Does the extraction earn its name? On a space small enough to evaluate exhaustively, run

  1. the exhaustive search: every candidate distilled for the full budget n, in <out>/exhaustive;
  2. the extraction (the loop with its early stop), once per W-coefficient form, in <out>/extraction-<form>
     (its own directory: nothing is shared with 1, both costs are real);
  3. random search with the extraction's cost (as many e* evaluations, drawn uniformly without replacement),
     `draws` times over the exhaustive table (e* is deterministic for a given candidate, seed and data, so a
     random search would measure exactly those values);

and compare the picks' W-coefficients with the exhaustive optimum and the (1 - ε) bound.
Writes <out>/experiment.json and <out>/experiment.md.
"""
import json
import os
import time

import numpy as np

from ..io_utils import atomic_open
from .api import extract


def random_search(w_by_key, budget, draws, seed=0):
    """Best W found by `draws` random searches of `budget` candidates each (numpy array of W's)."""
    keys = sorted(w_by_key)
    values = np.array([w_by_key[k] for k in keys])
    rng = np.random.default_rng(seed)
    return np.array([values[rng.choice(len(keys), size=budget, replace=False)].min() for _ in range(draws)])


def compare(extraction, exhaustive, w, epsilon, draws, seed=0):
    """The experiment's numbers: an extraction under W-coefficient `w` against the exhaustive table's e*."""
    rows = {row["key"]: row for row in exhaustive.rows}
    w_all = {key: w(row["p_ratio"], row["i_ratio"], row["e_ratio"]) for key, row in rows.items()}
    optimum_key = min(w_all, key=lambda k: (w_all[k], k))
    optimum = w_all[optimum_key]
    evaluated = [row["key"] for row in extraction.rows if row.get("w") is not None]
    e_diff = max(abs(row["e_star"] - rows[row["key"]]["e_star"]) for row in extraction.rows if row.get("w") is not None)
    randoms = random_search(w_all, len(evaluated), draws, seed)
    seconds = {key: row["train_seconds"] for key, row in rows.items()}
    return dict(
        w_form=w.form, space_size=exhaustive.space_size, epsilon=epsilon,
        exhaustive_optimum=optimum_key, exhaustive_optimum_w=optimum,
        extraction_pick=extraction.pick, extraction_pick_w=extraction.pick_w,
        extraction_ratio=optimum / extraction.pick_w,
        within_bound=bool((1 - epsilon) * extraction.pick_w <= optimum + 1e-12),
        found_optimum=extraction.pick == optimum_key, extraction_evaluations=len(evaluated),
        cost_fraction_candidates=len(evaluated) / exhaustive.space_size,
        cost_fraction_train_seconds=sum(seconds[k] for k in evaluated) / sum(seconds.values()),
        max_e_star_difference_between_runs=e_diff,
        random_search=dict(draws=draws, budget=len(evaluated), mean_ratio=float(np.mean(optimum / randoms)),
                           worst_ratio=float(np.min(optimum / randoms)),
                           found_optimum=float(np.mean(randoms <= optimum)),
                           within_bound=float(np.mean((1 - epsilon) * randoms <= optimum + 1e-12))),
        stopped=extraction.stopped)


def run_experiment(out_dir, draws=1000, resume=False, force=False, forms=None, **extract_args):
    """extract_args: everything `extract` takes except out_dir/resume/force. The exhaustive search runs once; the
    extraction once per W-coefficient form in `forms` (default: the form of loop_settings)."""
    import dataclasses

    loop_settings = extract_args.pop("loop_settings")
    forms = list(forms or [loop_settings.w.form])
    start = time.time()
    exhaustive, _ = extract(out_dir=os.path.join(out_dir, "exhaustive"), resume=resume, force=force,
                            loop_settings=dataclasses.replace(loop_settings, exhaustive=True), **extract_args)
    numbers = dict(exhaustive_wall_seconds=time.time() - start, results=[])
    for form in forms:
        settings = dataclasses.replace(loop_settings, w=dataclasses.replace(loop_settings.w, form=form))
        start = time.time()
        extraction, _ = extract(out_dir=os.path.join(out_dir, f"extraction-{form}"), resume=resume, force=force,
                                loop_settings=settings, **extract_args)
        result = compare(extraction, exhaustive, settings.w, settings.epsilon, draws)
        result["extraction_wall_seconds"] = time.time() - start
        result["wall_fraction"] = result["extraction_wall_seconds"] / numbers["exhaustive_wall_seconds"]
        numbers["results"].append(result)
    os.makedirs(out_dir, exist_ok=True)
    with atomic_open(os.path.join(out_dir, "experiment.json"), "w", encoding="utf-8") as handle:
        json.dump(numbers, handle, indent=1, sort_keys=True)
    with atomic_open(os.path.join(out_dir, "experiment.md"), "w", encoding="utf-8") as handle:
        handle.write(_markdown(numbers))
    return numbers


def _markdown(numbers):
    lines = ["# Extraction vs exhaustive search vs random search", "",
             f"Exhaustive search: {numbers['exhaustive_wall_seconds']:.0f} s of wall time.", ""]
    for n in numbers["results"]:
        r = n["random_search"]
        lines += [
            f"## W-coefficient form: {n['w_form']}", "",
            f"- space: {n['space_size']} candidates; epsilon = {n['epsilon']}",
            f"- exhaustive optimum: {n['exhaustive_optimum']} (W = {n['exhaustive_optimum_w']:.6g})",
            f"- extraction pick: {n['extraction_pick']} (W = {n['extraction_pick_w']:.6g}); W(opt)/W(pick) = "
            f"{n['extraction_ratio']:.4f}; within the (1 - epsilon) bound: {n['within_bound']}",
            f"- extraction cost: {n['extraction_evaluations']} of {n['space_size']} candidates trained "
            f"({n['cost_fraction_candidates']:.1%}); {n['cost_fraction_train_seconds']:.1%} of the exhaustive "
            f"search's training seconds; wall time {n['extraction_wall_seconds']:.0f} s "
            f"({n['wall_fraction']:.1%} of the exhaustive search's)",
            f"- random search with the same number of candidates ({r['draws']} draws): mean W(opt)/W(pick) = "
            f"{r['mean_ratio']:.4f}, worst {r['worst_ratio']:.4f}, found the optimum in {r['found_optimum']:.1%}, "
            f"within the bound in {r['within_bound']:.1%}",
            f"- e* of the same candidate in the two runs differs by at most "
            f"{n['max_e_star_difference_between_runs']:.3g}",
            f"- stopped: {n['stopped']}", ""]
    return "\n".join(lines)
