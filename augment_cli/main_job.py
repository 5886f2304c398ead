"""mmel-main: the whole job on the embedded default, offline, in a few minutes on a CPU.

Augments the embedded rt-polarity task with the embedded fill-mask model (Algorithm 2, greedy, |B| = 5,
ratio 0.4), labels it with the embedded teacher, trains a small student with MMEL-H and with the plain
baseline, and prints both validation accuracies and where everything was saved.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def make_parser():
    import argparse

    from transformers import HfArgumentParser

    from mmel_hf.main_job import MainJobConfig

    parser = HfArgumentParser(MainJobConfig)
    parser.prog = "mmel-main"
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    (config,) = parser.parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    from mmel_hf.errors import DataError
    from mmel_hf.main_job import run_main_job

    try:
        results = run_main_job(config)
    except (DataError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"mmel-main: error: {err}", file=sys.stderr)
        return 1
    augmentation = results["augmentation"]
    print()
    print(f"augmented rt-polarity: {augmentation['examples']} examples, {augmentation['augmented_samples']} samples "
          f"(distinct {augmentation['distinct_ratio']:.1%}) in {augmentation['seconds']:.0f}s"
          f"{' (cache hit)' if augmentation['cache_hit'] else ''} -> {augmentation.get('saved_to')}")
    for name, label in (("baseline", "baseline (no augmentation)"), ("mmel_hard", "MMEL-H")):
        result = results[name]
        print(f"{label:28s} validation accuracy {result['validation_accuracy']:.4f}   "
              f"({result['train_seconds']:.0f}s) -> {result['model_dir']}")
    print(f"results: {Path(config.output_dir).resolve() / 'results.json'}   total {results['total_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
