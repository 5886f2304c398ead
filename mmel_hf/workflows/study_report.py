"""The study's report: Table 3 / Table 4 layout in Markdown, JSON, and the Figure 2 curves as a PNG.

Everything is computed from the runs' ``metrics.json`` and ``predictions.json`` files, so a report can be
rebuilt at any time. Means are over seeds; ± is the sample standard deviation (ddof = 1). A comparison of
two methods is *paired* (same seed, same data, same labels): the mean difference with a confidence interval
from a bootstrap over seeds × evaluation examples (:mod:`mmel_hf.workflows.significance`). The intervals of one report
hold together at 95% (Bonferroni over its comparisons); a difference is "beyond noise" only when its
interval excludes 0 (with 3+ seeds), else "inconclusive", with the smallest difference the design detects.
A run that predicted one class for every example (collapsed) is marked in the table.

Examples:
    >>> found = compare([0.70, 0.72, 0.71], [0.69, 0.70, 0.70])
    >>> [round(d, 2) for d in found["per_seed"]], found["resampled"]
    ([0.01, 0.02, 0.01], 'seeds only')
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..tasks.registry import get_task
from ..templates import TEMPLATES_DIR
from ..utils.privacy import public_value
from .significance import VECTORISED_METRICS, collapsed, paired_bootstrap, seed_bootstrap
from .study_runs import finished_run

__all__ = ["compare", "cross_task_tables", "primary_metric", "summarise_runs", "verdict", "write_report"]

BASELINE_OF_MMEL = "uniform"  # DA+UNI isolates the reweighting: same samples, labels and cost
# (A, B, the question the comparison answers): the readings of every report, in this order.
COMPARISONS = (
    ("hard", BASELINE_OF_MMEL, "does reweighting beat plain augmentation at equal cost?"),
    ("soft", BASELINE_OF_MMEL, "the same for the soft loss"),
    (BASELINE_OF_MMEL, "none", "does augmentation with teacher labels beat no augmentation?"),
    ("long", BASELINE_OF_MMEL, "independent samples at |B|x the steps vs groups"),
    ("hard", "hard-original", "teacher labels vs original labels, Table 4"),
)


# Jinja, as the cards' templates: blocks leave no blank lines of their own; an unset name is an error, not "".
RESULTS_TEMPLATE = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR), trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    undefined=StrictUndefined, autoescape=False,
).get_template("study_results.md")  # fmt: skip


def primary_metric(spec) -> str:
    """The metric the task is judged by (the task's own; Matthews for CoLA, Spearman for STS-B ...)."""
    return spec.metric


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def compare(
    a: list[float],
    b: list[float],
    predictions_a=None,
    predictions_b=None,
    references=None,
    metric: str = "accuracy",
    comparisons: int = 1,
) -> dict:
    """The paired reading of A - B: with per-example predictions (``[seeds, N]`` each) a bootstrap over seeds ×
    examples, else over the per-seed scores ``a``, ``b`` alone (``resampled`` says which)."""
    if (
        predictions_a is not None
        and predictions_b is not None
        and references is not None
        and metric in VECTORISED_METRICS
    ):
        return paired_bootstrap(predictions_a, predictions_b, references, metric, comparisons=comparisons)
    return seed_bootstrap(a, b, comparisons=comparisons)


def _read_predictions(folder: Path, split: str):
    try:
        found = json.loads((folder / "predictions.json").read_text())[split]
        return np.asarray(found["predictions"]), np.asarray(found["references"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def summarise_runs(
    output: Path,
    methods,
    seeds,
    split: str,
    metric_keys: list[str],
    keys: dict | None = None,
    is_regression: bool = False,
) -> dict:
    """Per method: per-seed values of every metric of ``split``, mean, std, mean train seconds, curves, the seeds
    whose run collapsed, and (under ``_predictions``, not written to results.json) each run's predictions.

    With ``keys`` ((method key, seed) -> run key) only runs trained with exactly the study's settings count."""

    summary = {}
    for method in methods:
        runs = []
        for seed in seeds:
            key = keys.get((method.key, seed)) if keys is not None else None
            if keys is not None and key is None:
                continue
            folder = Path(output) / "runs" / method.key / f"seed-{seed}"
            found = finished_run(folder, key)
            if found is not None:
                runs.append((seed, found, _read_predictions(folder, split)))
        if not runs:
            continue
        entry = {
            "title": method.title,
            "mode": method.mode,
            "label_source": method.label_source,
            "lambda_p": method.lambda_p,
            "seeds": [s for s, _, _ in runs],
            "metrics": {},
            "train_seconds": _mean_std([r["train_seconds"] for _, r, _ in runs])[0],
            "curves": [r.get("curve", []) for _, r, _ in runs],
            "collapsed_seeds": [s for s, _, p in runs if p is not None and collapsed(p[0], is_regression)],
            "weights": [r.get("mmel_weights") for _, r, _ in runs],
            "_predictions": [p for _, _, p in runs],
        }
        for key in metric_keys:
            values = [r["metrics"][split][f"{split}_{key}"] for _, r, _ in runs]
            mean, std = _mean_std(values)
            entry["metrics"][key] = {"values": values, "mean": mean, "std": std}
        summary[method.key] = entry
    return summary


def _paired(a: dict, b: dict, metric: str, comparisons: int) -> tuple[dict, list[int]]:
    common = [s for s in a["seeds"] if s in b["seeds"]]
    pick = lambda entry, values: [v for s, v in zip(entry["seeds"], values) if s in common]  # noqa: E731
    values_a, values_b = pick(a, a["metrics"][metric]["values"]), pick(b, b["metrics"][metric]["values"])
    runs_a, runs_b = pick(a, a["_predictions"]), pick(b, b["_predictions"])
    usable = (
        all(r is not None for r in runs_a + runs_b)
        and len({len(r[1]) for r in runs_a + runs_b}) == 1
        and all(np.array_equal(r[1], runs_a[0][1]) for r in runs_a + runs_b)
    )  # the same examples, the same labels
    if usable:
        found = compare(
            values_a,
            values_b,
            np.stack([r[0] for r in runs_a]),
            np.stack([r[0] for r in runs_b]),
            runs_a[0][1],
            metric,
            comparisons,
        )
    else:
        found = compare(values_a, values_b, comparisons=comparisons)
    return found, common


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def reading_sentence(a: dict, b: dict, claim: str, metric: str, found: dict, seeds: list[int]) -> str:
    """One plain sentence for one comparison (see :func:`verdict`)."""
    low, high = found["interval"]
    level = f"{100 * found['level']:.4g}%" + (
        f" (with the report's {found['comparisons']} comparisons: 95% together)" if found["comparisons"] > 1 else ""
    )
    over = (
        f"{len(seeds)} seed(s) × {found['examples']} evaluation examples"
        if found["examples"]
        else f"{len(seeds)} seed(s) only: no per-example predictions, so evaluation-set noise is not counted"
    )
    collapsed_runs = [f"{e['title']} seed {s}" for e in (a, b) for s in e["collapsed_seeds"] if s in seeds]
    direction = "higher" if found["mean"] > 0 else "lower" if found["mean"] < 0 else "equal"
    if found["beyond_noise"]:
        reading = f"{direction}, beyond noise"
    else:
        reading = f"inconclusive: {found['inconclusive_because']}"
        if found["standard_error"] > 0:
            reading += (
                f"; this design detects a difference of about {100 * found['detectable']:.2f} points "
                f"(80% power{', evaluation-example noise only' if found['seeds'] < 3 else ''})"
            )
    weights = _mean_weights(a)
    behaved = (
        f" {a['title']}'s weights stayed near uniform in {weights['near_uniform_runs']} of {weights['runs']} "
        f"runs (effective sample share {weights['effective_share']:.3f}): there it behaved like DA+UNI."
        if weights and weights["near_uniform_runs"]
        else ""
    )
    return (
        f"{a['title']} vs {b['title']} ({claim}): {metric} {_points(found['mean'])} points on average over "
        f"{len(seeds)} paired seeds (per seed {', '.join(_points(d) for d in found['per_seed'])}); {level} "
        f"interval {_points(low)} to {_points(high)}, bootstrap over {over} — {reading}."
        + (f" Collapsed to one class: {', '.join(collapsed_runs)}." if collapsed_runs else "")
        + behaved
    )


def readings(summary: dict, metric: str) -> list[dict]:
    """Every comparison of :data:`COMPARISONS` whose two methods are in ``summary``, read with Bonferroni over all
    of them: ``{"a", "b", "claim", "seeds", "sentence", **reading}``."""
    present = [(a, b, claim) for a, b, claim in COMPARISONS if a in summary and b in summary]
    found = []
    for a_key, b_key, claim in present:
        reading, seeds = _paired(summary[a_key], summary[b_key], metric, len(present))
        sentence = reading_sentence(summary[a_key], summary[b_key], claim, metric, reading, seeds)
        found.append({"a": a_key, "b": b_key, "claim": claim, "seeds": seeds, "sentence": sentence, **reading})
    return found


def verdict(summary: dict, metric: str) -> list[str]:
    """Plain sentences: MMEL-H and MMEL-S against DA+UNI, DA+UNI against the Baseline, teacher vs original labels."""
    return [found["sentence"] for found in readings(summary, metric)]


def _plot(output: Path, summary: dict, metric: str, split: str, title: str) -> Path | None:
    import matplotlib  # noqa: PLC0415  (import cost: 0.7 s, measured)

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt  # noqa: PLC0415  (import cost: 0.7 s, measured)

    figure, axis = plt.subplots(figsize=(7, 4.5))
    key = f"eval_{split}_{metric}"
    for entry in summary.values():
        curves = [[p for p in curve if key in p] for curve in entry["curves"]]
        curves = [c for c in curves if c]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        seconds = np.mean([[p["train_seconds"] for p in c[:length]] for c in curves], axis=0)
        values = np.mean([[p[key] for p in c[:length]] for c in curves], axis=0)
        axis.plot(seconds, values, marker="o", label=entry["title"])
    axis.set_xlabel("training time (s), mean over seeds")
    axis.set_ylabel(f"{split} {metric}, mean over seeds")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path = Path(output) / "curves.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _augmenter_text(augmentation: dict, config) -> str:
    """What made the samples, in words: fill-mask's model and options, or another augmenter's description."""
    made = dict(augmentation.get("augmenter") or {"augmenter": "fill-mask"})
    name = made.pop("augmenter")
    if name == "fill-mask":
        return f"fill-mask `{augmentation.get('mlm_model')}`, greedy, |B| = {config.group_size}, ratio {config.ratio}"
    details = ", ".join(f"{k} {v}" for k, v in made.items() if v not in (None, [], {}) and not k.endswith("sha256"))
    return f"`{name}` augmenter" + (f" ({details})" if details else "")


def _scored(evaluation: dict | None) -> str:
    if not evaluation:
        return ""
    if evaluation.get("limited"):
        return (
            f", **only its first {evaluation['scored']} of {evaluation['of']} examples were scored** "
            "(--max-eval-samples): not the full split, not comparable to published numbers"
        )
    return f" (all {evaluation['scored']} examples)"


def _table_rows(summary: dict, metric_keys: list[str]) -> list[dict]:
    """The rows of a Table 3/4 layout: each method's metrics (mean, std), per-seed values, train time."""
    return [
        {
            "title": entry["title"],
            "metrics": [entry["metrics"][key] for key in metric_keys],
            "per_seed": [
                {"value": value, "collapsed": seed in entry["collapsed_seeds"]}
                for seed, value in zip(entry["seeds"], entry["metrics"][metric_keys[0]]["values"])
            ],
            "train_seconds": entry["train_seconds"],
            "collapsed": bool(entry["collapsed_seeds"]),
        }
        for entry in summary.values()
    ]


def _mean_weights(entry: dict) -> dict | None:
    found = [w for w in entry.get("weights") or [] if w]
    if not found:
        return None
    return {
        "normalised_entropy": float(np.mean([w["normalised_entropy"] for w in found])),
        "effective_share": float(np.mean([w["effective_share"] for w in found])),
        "near_uniform_runs": sum(bool(w["near_uniform"]) for w in found),
        "runs": len(found),
    }


def _weights_rows(summary: dict, metric: str) -> list[dict]:
    """How far P* moved from uniform in each MMEL method (the lambda_P sweep's effect), beside the metric."""
    rows = [(entry, _mean_weights(entry)) for entry in summary.values() if entry["mode"] in ("hard", "soft")]
    rows = sorted(
        [(e, w) for e, w in rows if w],
        key=lambda r: (r[0]["mode"], r[0]["label_source"] != "teacher", -r[0]["lambda_p"]),
    )
    return [
        {"title": e["title"], "lambda_p": e["lambda_p"], "metric": e["metrics"][metric]["mean"], **weights}
        for e, weights in rows
    ]


def render_results(config, report: dict, metric_keys: list[str], plot: str | None) -> str:
    """``results.md`` from ``templates/study_results.md``: the settings, Tables 3 and 4, how far the weights moved,
    the readings and the curves. ``report``: what ``results.json`` holds (the task, split and metric, the methods'
    summaries, the readings, the teacher's metrics, the augmentation and the evaluation)."""
    summary, augmentation, split = report["methods"], report["augmentation"], report["split"]
    scores = next(iter(report["teacher"].values())).items() if report["teacher"] else None
    table4 = {k: v for k, v in summary.items() if v["mode"] == "hard" and v["lambda_p"] == 1.0}
    return RESULTS_TEMPLATE.render(
        task=report["task"],
        split=split,
        examples=augmentation.get("examples"),
        evaluation=report["evaluation"],
        teacher_scores=None
        if scores is None
        else [(k.split("_", 1)[1], v) for k, v in scores if not k.endswith("_loss")],
        teacher_model=public_value(config.teacher_model),
        teacher_layers=config.teacher_layers,
        teacher=public_value(config.teacher),
        augmenter=_augmenter_text(augmentation, config),
        augmented_samples=augmentation.get("augmented_samples"),
        distinct_ratio=augmentation.get("distinct_ratio", 0),
        student_model=public_value(config.student_model),
        student_layers=config.student_layers,
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        seeds=config.seeds,
        metric_keys=metric_keys,
        metric=report["metric"],
        table3=_table_rows(summary, metric_keys),
        table4=_table_rows(table4, metric_keys) if len(table4) > 1 else None,
        weights=_weights_rows(summary, report["metric"]),
        sentences=report["verdict"],
        plot=plot,
    )


def write_report(
    output: Path,
    config,
    teacher_summary: dict | None,
    augmentation: dict,
    spec=None,
    evaluation: dict | None = None,
    keys: dict | None = None,
) -> dict:
    """Write results.md, results.json and curves.png for the study in ``output``; return the report.

    ``spec``: the study's task (default: the registered ``config.task``); ``evaluation``: the split, how many
    examples were scored and whether that is only part of it; ``keys``: the runs that match the study's
    settings (others in the folder are left out)."""

    output = Path(output)
    spec = spec if spec is not None else get_task(config.task)
    split = spec.eval_splits[0]
    metric_keys = _metric_keys(output, config, spec.metric, split, keys)
    summary = summarise_runs(output, config.method_specs, config.seeds, split, metric_keys, keys, spec.is_regression)
    comparisons = readings(summary, spec.metric)
    plot = (
        _plot(output, summary, spec.metric, split, f"{spec.name}: {split} {spec.metric} vs training time")
        if summary
        else None
    )
    for entry in summary.values():
        entry.pop("_predictions", None)  # in each run's predictions.json already
    report = {
        "task": spec.name,
        "split": split,
        "metric": spec.metric,
        "methods": summary,
        "verdict": [found["sentence"] for found in comparisons],
        "comparisons": [{k: v for k, v in found.items() if k != "sentence"} for found in comparisons],
        "teacher": teacher_summary and teacher_summary["metrics"],
        "augmentation": augmentation,
        "evaluation": evaluation,
        "config": config.to_dict(),
    }
    (output / "results.md").write_text(render_results(config, report, metric_keys, plot.name if plot else None))
    (output / "results.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def _metric_keys(output: Path, config, metric: str, split: str, keys: dict | None) -> list[str]:
    """The task's metric first, then the other metrics the first finished run that has any scored (losses left out)."""
    for method in config.method_specs:
        for seed in config.seeds:
            found = finished_run(output / "runs" / method.key / f"seed-{seed}", (keys or {}).get((method.key, seed)))
            if found is not None:
                scored = found["metrics"].get(split, {})
                others = [k[len(split) + 1 :] for k in scored if k != f"{split}_{metric}" and not k.endswith("_loss")]
                if others:
                    return [metric, *sorted(others)]
    return [metric]


TABLE_ORDER = ("none", "long", "uniform", "max", "hard", "soft", "hard-original")  # the paper's row order
# The differences a cross-task report reads, in the words of Tables 3 and 4.
CROSS_TASK_COMPARISONS = (
    ("hard", BASELINE_OF_MMEL, "MMEL-H − DA+UNI"),
    ("soft", BASELINE_OF_MMEL, "MMEL-S − DA+UNI"),
    (BASELINE_OF_MMEL, "none", "DA+UNI − Baseline"),
    ("hard", "hard-original", "MMEL-H: teacher − original labels"),
)


def cross_task_tables(reports: dict[str, dict]) -> list[str]:
    """Markdown for several tasks' study reports (``results.json`` of each) side by side: Table 3's layout (rows:
    methods; columns: tasks, each judged by its own metric, mean ± std over seeds, ×100), the per-seed values, and
    the paired differences with each report's interval and reading."""
    keys = [k for k in TABLE_ORDER if any(k in r["methods"] for r in reports.values())]
    keys += sorted({k for r in reports.values() for k in r["methods"]} - set(keys))
    titles = {k: next(r["methods"][k]["title"] for r in reports.values() if k in r["methods"]) for k in keys}
    header = "| method | " + " | ".join(f"{task} ({r['metric']})" for task, r in reports.items()) + " |"
    rule = "|" + "---|" * (len(reports) + 1)
    table, seeds = [header, rule], [header, rule]
    for key in keys:
        cells, per_seed = [], []
        for report in reports.values():
            entry = report["methods"].get(key)
            found = entry and entry["metrics"][report["metric"]]
            cells.append(f"{100 * found['mean']:.2f} ± {100 * found['std']:.2f}" if found else "—")
            per_seed.append(", ".join(f"{100 * v:.2f}" for v in found["values"]) if found else "—")
        table.append(f"| {titles[key]} | " + " | ".join(cells) + " |")
        seeds.append(f"| {titles[key]} | " + " | ".join(per_seed) + " |")
    differences = [
        "| difference (points) | " + " | ".join(reports) + " |",
        rule,
    ]
    for a, b, name in CROSS_TASK_COMPARISONS:
        cells = []
        for report in reports.values():
            found = next((c for c in report.get("comparisons", []) if (c["a"], c["b"]) == (a, b)), None)
            if found is None:
                cells.append("—")
                continue
            low, high = found["interval"]
            reading = "beyond noise" if found["beyond_noise"] else "inconclusive"
            cells.append(f"{_points(found['mean'])} [{_points(low)}, {_points(high)}] {reading}")
        differences.append(f"| {name} | " + " | ".join(cells) + " |")
    return [
        "### Table 3 layout (dev, ×100, mean ± std over seeds)",
        "",
        *table,
        "",
        "### Per seed",
        "",
        *seeds,
        "",
        "### Paired differences (mean over seeds, [interval] over seeds × evaluation examples, reading)",
        "",
        'Each task\'s intervals hold together at 95% over its comparisons (Bonferroni); "beyond noise" only when '
        "the interval excludes 0 with 3 or more seeds.",
        "",
        *differences,
    ]
