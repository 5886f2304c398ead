"""mmel-study: the paper's protocol on one task — teacher, augmentation, every method x every seed, tables.

Examples:
    mmel-study --task rte --data-dir glue/RTE --max-train-samples 500 --output-dir rte-study
    mmel-study --task stsb --data-dir glue/STS-B --methods none uniform hard soft --seeds 0 1 2 3 4
    mmel-study --task rt-polarity --methods hard hard@0.1 hard@10 uniform     # a lambda_P sweep

The teacher is fine-tuned on the same examples as the students (or give --teacher). Every method shares the
student, data, teacher labels and settings; finished runs are skipped on a rerun. Writes results.md (Table 3
and Table 4 layout, paired differences against DA+UNI), results.json and curves.png in --output-dir.
"""

from __future__ import annotations

import sys


def make_parser():
    from augment_cli.console import build_parser
    from mmel_hf.workflows.study import StudyConfig

    return build_parser(StudyConfig, "mmel-study", __doc__)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from augment_cli.console import parse_into_dataclasses

    (config,) = parse_into_dataclasses(make_parser(), argv)
    from pathlib import Path

    from augment_cli.console import quiet_libraries, run_or_report
    from mmel_hf.workflows.study import run_study

    quiet_libraries(config.progress)
    code, report = run_or_report(
        "mmel-study",
        lambda: run_study(config, say=lambda line: print(line, flush=True)),
        "rerun the same command to resume (finished runs are kept)",
    )
    if code:
        return code
    print()
    for sentence in report["verdict"]:
        print(sentence)
    print(f"results: {Path(config.output_dir).resolve() / 'results.md'}  ({report['total_seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
