"""mmel-main: does reweighting beat plain augmentation? The paper's comparison on the embedded task, offline.

On rt-polarity (Rotten Tomatoes snippets, shipped with mmel_hf): a teacher fine-tuned on the same examples the
students see, Algorithm 2 augmentation labelled by it, then one small student trained with Baseline, DA+UNI,
MMEL-H and MMEL-S over several seeds. Prints the table and each paired difference with a 95% interval over
seeds x evaluation examples: "beyond noise" only when it excludes 0, "inconclusive" otherwise.
A second run reuses everything cached. `mmel-study` runs the same protocol on any task with any methods.
"""

from __future__ import annotations

import sys
from pathlib import Path


def make_parser():
    from augment_cli.console import build_parser
    from mmel_hf.workflows.main_job import MainJobConfig

    return build_parser(MainJobConfig, "mmel-main", __doc__)


def print_report(report: dict) -> None:
    methods = report["methods"]
    metric = report["metric"]
    augmentation = report["augmentation"]
    teacher = report.get("teacher") or {}
    teacher_metric = next(iter(teacher.values()), {}).get(f"{report['split']}_{metric}")
    print()
    evaluated = augmentation["splits"].get(report["split"], 0)
    if report["config"].get("max_eval_samples"):
        evaluated = min(evaluated, report["config"]["max_eval_samples"])
    print(
        f"{report['task']}: {augmentation['examples']} training examples, {augmentation['augmented_samples']} augmented "
        f"samples ({augmentation['distinct_ratio']:.1%} distinct); evaluated on {evaluated} {report['split']} examples"
    )
    if teacher_metric is not None:
        print(f"teacher (trained on the same {augmentation['examples']} examples): {metric} {100 * teacher_metric:.2f}")
    print(f"{'method':20s} {metric + ' (mean ± std)':>24s}   per seed                 train time/run")
    for entry in methods.values():
        values = entry["metrics"][metric]
        seeds = ", ".join(f"{100 * v:.2f}" for v in values["values"])
        print(
            f"{entry['title']:20s} {100 * values['mean']:15.2f} ± {100 * values['std']:5.2f}   {seeds:24s} "
            f"{entry['train_seconds']:6.0f}s"
        )
    best = max(methods.values(), key=lambda e: e["metrics"][metric]["mean"])
    print()
    print(f"Highest mean {metric}: {best['title']} ({100 * best['metrics'][metric]['mean']:.2f}). Paired by seed:")
    for sentence in report["verdict"]:
        print(f"- {sentence}")


def main(argv: list[str] | None = None) -> int:
    from augment_cli.console import parse_into_dataclasses

    (config,) = parse_into_dataclasses(make_parser(), sys.argv[1:] if argv is None else argv)
    from augment_cli.console import quiet_libraries, run_or_report
    from mmel_hf.workflows.main_job import run_main_job

    quiet_libraries(config.progress)
    code, report = run_or_report(
        "mmel-main",
        lambda: run_main_job(config, say=lambda line: print(line, flush=True)),
        "rerun the same command to resume (finished stages are kept)",
    )
    if code:
        return code
    print_report(report)
    output = Path(config.output_dir).resolve()
    print(
        f"\nresults: {output / 'results.md'} (and results.json, curves.png); precision {report['precision']}; "
        f"total {report['total_seconds']:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
