"""The study's report: Table 3 / Table 4 layout in Markdown, JSON, and the Figure 2 curves as a PNG.

Everything is computed from the runs' ``metrics.json`` files, so a report can be rebuilt at any time.
Means are over seeds; ± is the sample standard deviation (ddof = 1). A comparison of two methods uses the
per-seed *paired* differences (same seed, same data, same labels), and calls a mean difference "beyond
seed noise" only when a two-sided paired t-test over the seeds gives p < 0.05 (with 3 seeds the mean
difference must exceed 4.3 standard errors).

Example:
    >>> compare([0.70, 0.72, 0.71], [0.69, 0.70, 0.70])["differences"]
    [0.01, 0.02, 0.01]
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

__all__ = ["compare", "primary_metric", "summarise_runs", "verdict", "write_report"]

BASELINE_OF_MMEL = "uniform"  # DA+UNI isolates the reweighting: same samples, labels and cost


def primary_metric(spec) -> str:
    """The metric the task is judged by (the task's own; Matthews for CoLA, Spearman for STS-B ...)."""
    return spec.metric


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def compare(a: list[float], b: list[float]) -> dict:
    """Paired differences a - b (per seed): mean, standard error, paired t-test p-value, beyond noise or not."""
    from scipy.stats import t as student_t

    differences = [round(x - y, 10) for x, y in zip(a, b)]
    mean, std = _mean_std(differences)
    n = len(differences)
    stderr = std / math.sqrt(n) if n else math.nan
    if n < 2:
        p_value = math.nan
    elif stderr == 0:
        p_value = 0.0 if mean != 0 else 1.0
    else:
        p_value = float(2 * student_t.sf(abs(mean) / stderr, n - 1))
    beyond = n > 1 and p_value < 0.05
    return {"differences": differences, "mean": mean, "stderr": stderr, "p_value": p_value, "beyond_noise": bool(beyond)}


def summarise_runs(output: Path, methods, seeds, split: str, metric_keys: list[str], keys: dict | None = None) -> dict:
    """Per method: per-seed values of every metric of ``split``, mean, std, mean train seconds, curves.

    With ``keys`` ((method key, seed) -> run key) only runs trained with exactly the study's settings count."""
    from .study import _done

    summary = {}
    for method in methods:
        runs = []
        for seed in seeds:
            key = keys.get((method.key, seed)) if keys is not None else None
            if keys is not None and key is None:
                continue
            found = _done(Path(output) / "runs" / method.key / f"seed-{seed}", key)
            if found is not None:
                runs.append((seed, found))
        if not runs:
            continue
        entry = {"title": method.title, "mode": method.mode, "label_source": method.label_source,
                 "lambda_p": method.lambda_p, "seeds": [s for s, _ in runs], "metrics": {},
                 "train_seconds": _mean_std([r["train_seconds"] for _, r in runs])[0],
                 "curves": [r.get("curve", []) for _, r in runs]}
        for key in metric_keys:
            values = [r["metrics"][split][f"{split}_{key}"] for _, r in runs]
            mean, std = _mean_std(values)
            entry["metrics"][key] = {"values": values, "mean": mean, "std": std}
        summary[method.key] = entry
    return summary


def verdict(summary: dict, metric: str) -> list[str]:
    """Plain sentences: MMEL-H and MMEL-S against DA+UNI, DA+UNI against the Baseline, teacher vs original labels."""
    sentences = []

    def sentence(a_key: str, b_key: str, claim: str) -> None:
        if a_key not in summary or b_key not in summary:
            return
        a, b = summary[a_key], summary[b_key]
        common = [s for s in a["seeds"] if s in b["seeds"]]
        values_a = [v for s, v in zip(a["seeds"], a["metrics"][metric]["values"]) if s in common]
        values_b = [v for s, v in zip(b["seeds"], b["metrics"][metric]["values"]) if s in common]
        result = compare(values_a, values_b)
        scale = 100
        direction = "higher" if result["mean"] > 0 else "lower" if result["mean"] < 0 else "equal"
        noise = "beyond seed noise" if result["beyond_noise"] else "within seed noise"
        p_value = "" if math.isnan(result["p_value"]) else f", paired t-test p = {result['p_value']:.2f}"
        sentences.append(
            f"{a['title']} vs {b['title']} ({claim}): {metric} {scale * result['mean']:+.2f} points on average over "
            f"{len(common)} paired seeds (per seed {', '.join(f'{scale * d:+.2f}' for d in result['differences'])}; "
            f"standard error {scale * result['stderr']:.2f}{p_value}) — {direction}, {noise}."
        )

    sentence("hard", BASELINE_OF_MMEL, "does reweighting beat plain augmentation at equal cost?")
    sentence("soft", BASELINE_OF_MMEL, "the same for the soft loss")
    sentence(BASELINE_OF_MMEL, "none", "does augmentation with teacher labels beat no augmentation?")
    sentence("long", BASELINE_OF_MMEL, "independent samples at |B|x the steps vs groups")
    sentence("hard", "hard-original", "teacher labels vs original labels, Table 4")
    return sentences


def _plot(output: Path, summary: dict, metric: str, split: str, title: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

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


def _scored(evaluation: dict | None) -> str:
    if not evaluation:
        return ""
    if evaluation.get("limited"):
        return (f", **only its first {evaluation['scored']} of {evaluation['of']} examples were scored** "
                "(--max-eval-samples): not the full split, not comparable to published numbers")
    return f" (all {evaluation['scored']} examples)"


def _table(summary: dict, metric_keys: list[str]) -> list[str]:
    header = "| method | " + " | ".join(metric_keys) + " | per-seed " + metric_keys[0] + " | train time per run |"
    lines = [header, "|" + "---|" * (len(metric_keys) + 3)]
    for entry in summary.values():
        cells = [f"{100 * m['mean']:.2f} ± {100 * m['std']:.2f}" for m in (entry["metrics"][k] for k in metric_keys)]
        seeds = ", ".join(f"{100 * v:.2f}" for v in entry["metrics"][metric_keys[0]]["values"])
        lines.append(f"| {entry['title']} | " + " | ".join(cells) + f" | {seeds} | {entry['train_seconds']:.1f} s |")
    return lines


def write_report(output: Path, config, teacher_summary: dict | None, augmentation: dict, spec=None,
                 evaluation: dict | None = None, keys: dict | None = None) -> dict:
    """Write results.md, results.json and curves.png for the study in ``output``; return the report.

    ``spec``: the study's task (default: the registered ``config.task``); ``evaluation``: the split, how many
    examples were scored and whether that is only part of it; ``keys``: the runs that match the study's
    settings (others in the folder are left out)."""
    from .augment.tasks import get_task
    from .privacy import public_value
    from .study import _done

    output = Path(output)
    spec = spec if spec is not None else get_task(config.task)
    split = spec.eval_splits[0]
    metric_keys = [spec.metric]
    for method in config.method_specs:
        for seed in config.seeds:
            found = _done(output / "runs" / method.key / f"seed-{seed}", (keys or {}).get((method.key, seed)))
            if found is not None and metric_keys == [spec.metric]:
                scored = found["metrics"].get(split, {})
                metric_keys = [spec.metric] + sorted(k[len(split) + 1:] for k in scored
                                                     if k != f"{split}_{spec.metric}" and not k.endswith("_loss"))
    summary = summarise_runs(output, config.method_specs, config.seeds, split, metric_keys, keys)
    sentences = verdict(summary, spec.metric)
    plot = _plot(output, summary, spec.metric, split, f"{spec.name}: {split} {spec.metric} vs training time") \
        if summary else None
    teacher_line = (f"{public_value(config.teacher_model)}"
                    + (f", first {config.teacher_layers} layers" if config.teacher_layers else "")
                    + f", fine-tuned on the same {augmentation.get('examples')} examples: "
                    + ", ".join(f"{k.split('_', 1)[1]} {100 * v:.2f}"
                                for k, v in next(iter(teacher_summary["metrics"].values())).items()
                                if not k.endswith("_loss"))
                    ) if teacher_summary else f"given: {public_value(config.teacher)}"
    lines = [
        f"# Study: {spec.name}", "",
        f"- Training examples: {augmentation.get('examples')} (teacher and every student see the same ones); "
        f"evaluation: `{split}`" + _scored(evaluation),
        f"- Teacher: {teacher_line}",
        f"- Augmentation: fill-mask `{augmentation.get('mlm_model')}`, greedy, |B| = {config.group_size}, ratio "
        f"{config.ratio}; {augmentation.get('augmented_samples')} samples, {100 * augmentation.get('distinct_ratio', 0):.1f}% distinct",
        f"- Students: `{public_value(config.student_model)}`" + (f", first {config.student_layers} layers" if config.student_layers else "")
        + f"; {config.epochs:g} epochs, lr {config.learning_rate}, batch {config.batch_size}, weight decay "
        f"{config.weight_decay}, warm-up {config.warmup_ratio}; seeds {config.seeds}; lambda_P = 1 unless named",
        "", f"## Table 3 layout ({split}, ×100, mean ± std over seeds)", "", *_table(summary, metric_keys), "",
    ]
    table4 = {k: v for k, v in summary.items() if v["mode"] == "hard" and v["lambda_p"] == 1.0}
    if len(table4) > 1:
        lines += ["## Table 4 layout (MMEL-H with teacher vs original labels)", "", *_table(table4, metric_keys), ""]
    lines += ["## Reading (paired by seed; beyond noise = two-sided paired t-test over seeds, p < 0.05)", "",
              *[f"- {s}" for s in sentences], ""]
    if plot is not None:
        lines += [f"![{spec.metric} against training time]({plot.name})", ""]
    (output / "results.md").write_text("\n".join(lines))
    report = {"task": spec.name, "split": split, "metric": spec.metric, "methods": summary, "verdict": sentences,
              "teacher": teacher_summary and teacher_summary["metrics"], "augmentation": augmentation,
              "evaluation": evaluation,
              "config": config.to_dict()}
    (output / "results.json").write_text(json.dumps(report, indent=2, default=str))
    return report
