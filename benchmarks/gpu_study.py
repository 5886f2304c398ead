"""The paper's study at full size in one GPU call (issue 32): four real GLUE tasks, every method, seeds, intervals.

For each task of ``--glue-dir`` (CoLA, MRPC, RTE, STS-B as GLUE distributes them, whole training sets, official
dev sets) it runs ``mmel-study``'s protocol (Section 4.2): a teacher fine-tuned on the full training set, Algorithm
2 (greedy, |B| = 5, ratio 0.4, the sentences of a pair separately) labelled by it, then Baseline, DA+UNI, MMEL-H,
MMEL-S and MMEL-H with original labels (Table 4) over the seeds, with one set of settings for every method. The
student runs of a task train ``--parallel-runs`` at a time on the one GPU (a 6-layer student leaves an H100 idle
between its steps). It writes one JSON and one Markdown report in the layout of Tables 3 and 4 (mean ± std over
seeds, per-seed values, the paired differences with their intervals and readings), each stage's time and the card.

**Budget.** Before it starts, it plans the work from ``--budget-s`` and the rates it expects (estimates for an
H100-class card until a GPU run has measured them; ``--rates`` reads measured ones) and prints the plan. When the
plan does not fit, it cuts, in this order, and says so: student epochs (down to 1), teacher epochs (down to 1),
seeds (down to 3), then whole tasks (the most expensive first). While it runs, a task that would no longer fit
the time left (its estimate scaled by how far the finished tasks were off theirs) is cut too, never run over.

Settings (the paper's Table 7 where they fit): batch 32 originals, weight decay 0, no warm-up, linear decay,
lambda_P = 1, |B| = 5, max length 128, bf16 on a GPU with bf16 tensor cores. The learning rate is 1e-4, not the
paper's 3e-5: the default encoder is the embedded 6 x 384 MiniLM, not BERT-base, and trains for fewer epochs.

    benchmarks/gpu_study.sh                       # on the GPU machine (prepared by benchmarks/gpu_study_prepare.sh)
    python benchmarks/gpu_study.py --glue-dir ../shared/glue --out study-out          # on your own GPU
    python benchmarks/gpu_study.py --glue-dir ../shared/glue --model bert-base-uncased \\
        --mlm-model bert-base-uncased --learning-rate 3e-5 --epochs 10 --budget-s 0      # the paper's settings
    python benchmarks/gpu_study.py --dry-run --glue-dir DIR --out DIR          # tiny models, a few rows, the CPU
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

# The GLUE folders and what each task is (segments: sentences per example; Algorithm 2 augments each on its own).
TASKS = {"cola": ("CoLA", 1), "mrpc": ("MRPC", 2), "rte": ("RTE", 2), "stsb": ("STS-B", 2)}
METHODS = ["none", "uniform", "hard", "soft", "hard-original"]  # Baseline, DA+UNI, MMEL-H, MMEL-S, Table 4
MIN_SEEDS = 3

# What one H100/H200-class GPU is expected to do with the embedded 6 x 384 encoder in bf16: ESTIMATES, to be
# replaced by the rates a GPU run measures (its JSON's "measured_rates", read back with --rates).
ESTIMATED_RATES = {
    "process_start_s": 25.0,  # this process: imports, CUDA context, the GLUE files read
    "pool_start_s": 12.0,  # the worker processes of one task's parallel runs (spawned: imports, CUDA context)
    "run_start_s": 4.0,  # one training run: model, data and Trainer set up, the final evaluation's set-up
    "step_s": 0.030,  # one optimizer step's fixed host cost (a small model is host-bound)
    "sequence_s": 2.0e-5,  # each sequence of a step (forward + backward + AdamW share)
    "eval_examples_per_s": 4000.0,
    "augment_segments_per_s": 700.0,  # sentences through Algorithm 2 and the teacher, per second
    "parallel_efficiency": 0.7,  # P runs at once go (1 + (P - 1) x this) times as fast as one
}


@dataclass
class Settings:
    """One set of settings for every task and method."""

    seeds: list[int]
    epochs: int
    teacher_epochs: int
    batch_size: int = 32
    learning_rate: float = 1e-4
    group_size: int = 5
    parallel_runs: int = 8
    methods: list[str] = field(default_factory=lambda: list(METHODS))


@dataclass
class TaskSize:
    name: str
    train: int
    dev: int
    segments: int


def count_rows(path: Path) -> int:
    """Data rows of a GLUE TSV (its header, where the task has one, not counted): read as GLUE files are, bare
    quotes as text."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = sum(1 for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if row)
    return rows - (0 if path.parent.name == "CoLA" else 1)


def task_sizes(glue_dir: Path, tasks: list[str], max_train_samples: int | None) -> dict[str, TaskSize]:
    sizes = {}
    for name in tasks:
        folder = glue_dir / TASKS[name][0]
        for split in ("train.tsv", "dev.tsv"):
            if not (folder / split).is_file():
                raise SystemExit(f"gpu_study: {folder / split} is missing (--glue-dir holds CoLA/ MRPC/ RTE/ STS-B/)")
        train = count_rows(folder / "train.tsv")
        sizes[name] = TaskSize(
            name, min(train, max_train_samples or train), count_rows(folder / "dev.tsv"), TASKS[name][1]
        )
    return sizes


# -- The plan ----------------------------------------------------------------------------------------------------


def run_seconds(rows: int, dev: int, epochs: int, batch: int, sequences_per_row: int, rates: dict) -> float:
    """One training run: its steps (a fixed host cost plus each sequence), an evaluation per epoch, its set-up."""
    steps = math.ceil(rows / batch) * epochs
    train = steps * (rates["step_s"] + batch * sequences_per_row * rates["sequence_s"])
    return rates["run_start_s"] + train + epochs * dev / rates["eval_examples_per_s"]


def task_estimate(size: TaskSize, settings: Settings, rates: dict) -> dict:
    """Seconds of each stage of one task: the teacher, the augmentation, the students (in parallel)."""
    teacher = run_seconds(size.train, size.dev, settings.teacher_epochs, settings.batch_size, 1, rates)
    augmentation = rates["run_start_s"] + size.train * size.segments / rates["augment_segments_per_s"]
    runs = [
        run_seconds(
            size.train,
            size.dev,
            settings.epochs,
            settings.batch_size,
            1 if method == "none" else settings.group_size,
            rates,
        )
        for method in settings.methods
        for _ in settings.seeds
    ]
    workers = min(settings.parallel_runs, len(runs))
    speed = 1 + (workers - 1) * rates["parallel_efficiency"]
    students = sum(runs) / speed + (rates["pool_start_s"] if workers > 1 else 0.0)
    # The slowest run bounds the stage from below, however many run at once.
    students = max(students, max(runs))
    return {
        "teacher": round(teacher, 1),
        "augmentation": round(augmentation, 1),
        "students": round(students, 1),
        "total": round(teacher + augmentation + students, 1),
    }


@dataclass
class Plan:
    settings: Settings
    tasks: list[str]
    estimates: dict  # task -> stage seconds
    total: float
    cuts: list[str]
    budget_s: float

    def lines(self) -> list[str]:
        s = self.settings
        head = (
            f"plan: tasks {', '.join(self.tasks) or 'none'}; methods {', '.join(s.methods)}; seeds {s.seeds}; "
            f"students {s.epochs} epoch(s), teacher {s.teacher_epochs}; batch {s.batch_size}, lr {s.learning_rate:g}, "
            f"{s.parallel_runs} runs at a time"
        )
        rows = [
            f"  {task}: teacher {e['teacher']:.0f} s, augmentation {e['augmentation']:.0f} s, students "
            f"{e['students']:.0f} s = {e['total']:.0f} s"
            for task, e in self.estimates.items()
        ]
        budget = f"{self.budget_s:.0f} s" if self.budget_s else "none"
        tail = [f"  estimated total {self.total:.0f} s (start included) against a budget of {budget}"]
        return [head, *rows, *tail, *(f"  cut: {cut}" for cut in self.cuts)]


def make_plan(sizes: dict[str, TaskSize], settings: Settings, rates: dict, budget_s: float) -> Plan:
    """The work that fits ``budget_s`` (0: no budget), cutting student epochs, teacher epochs, seeds (to 3) and then
    the most expensive tasks, in that order; every cut is said."""
    cuts: list[str] = []
    tasks = list(sizes)

    def total(s: Settings, names: list[str]) -> tuple[dict, float]:
        estimates = {name: task_estimate(sizes[name], s, rates) for name in names}
        return estimates, rates["process_start_s"] + sum(e["total"] for e in estimates.values())

    estimates, seconds = total(settings, tasks)
    fits = lambda: not budget_s or seconds <= budget_s  # noqa: E731
    asked = settings
    while not fits() and settings.epochs > 1:
        settings = replace(settings, epochs=settings.epochs - 1)
        estimates, seconds = total(settings, tasks)
    if settings.epochs != asked.epochs:
        cuts.append(f"student epochs {asked.epochs} -> {settings.epochs}")
    while not fits() and settings.teacher_epochs > 1:
        settings = replace(settings, teacher_epochs=settings.teacher_epochs - 1)
        estimates, seconds = total(settings, tasks)
    if settings.teacher_epochs != asked.teacher_epochs:
        cuts.append(f"teacher epochs {asked.teacher_epochs} -> {settings.teacher_epochs}")
    while not fits() and len(settings.seeds) > MIN_SEEDS:
        settings = replace(settings, seeds=settings.seeds[:-1])
        estimates, seconds = total(settings, tasks)
    if settings.seeds != asked.seeds:
        cuts.append(f"seeds {asked.seeds} -> {settings.seeds}")
    while not fits() and tasks:
        dropped = max(tasks, key=lambda name: estimates[name]["total"])
        tasks.remove(dropped)
        cuts.append(f"task {dropped} (estimated {estimates[dropped]['total']:.0f} s)")
        estimates, seconds = total(settings, tasks)
    return Plan(settings, tasks, estimates, round(seconds, 1), cuts, budget_s)


# -- Running it --------------------------------------------------------------------------------------------------


def study_config(name: str, args, settings: Settings, work: Path, models: dict):
    from mmel_hf.workflows.study import StudyConfig

    return StudyConfig(
        task=name,
        data_dir=str(Path(args.glue_dir) / TASKS[name][0]),
        output_dir=str(work / name),
        max_train_samples=args.max_train_samples or 0,
        methods=settings.methods,
        seeds=settings.seeds,
        teacher_model=models["model"],
        teacher_epochs=settings.teacher_epochs,
        teacher_learning_rate=settings.learning_rate,
        mlm_model=models["mlm"],
        student_model=models["model"],
        student_layers=None,
        group_size=settings.group_size,
        epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        weight_decay=0.0,
        warmup_ratio=0.0,
        max_length=args.max_length,
        cache_dir=str(work / "cache"),
        parallel_runs=settings.parallel_runs,
    )


def tiny_models(work: Path) -> dict:
    """--dry-run: a tiny fill-mask model with the embedded tokenizer, as both the encoder and the fill-mask model."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(ROOT / "mmel_hf" / "embedded" / "mlm")
    folder = work / "tiny-mlm"
    if not (folder / "config.json").exists():
        import torch
        from gpu_check import TINY  # the GPU check's tiny size, for its dry run too

        torch.manual_seed(0)
        BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, **TINY)).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return {"model": str(folder), "mlm": str(folder)}


def measured_rates(task_reports: dict, sizes: dict[str, TaskSize], settings: Settings) -> dict:
    """Rates fitted to what ran, in --rates' format, so that a later plan starts from this card's figures: the
    augmentation's sentences/s; a step's fixed and per-sequence costs from the Baseline (1 sequence per example)
    and DA+UNI (|B|) runs as they ran side by side; how much faster the runs went together than one by one."""
    rates = {}
    segments = sum(sizes[t].train * sizes[t].segments for t in task_reports)
    seconds = sum(r["stage_seconds"]["augmentation"] for r in task_reports.values())
    if segments and seconds:
        rates["augment_segments_per_s"] = round(segments / seconds, 1)
    fits, speeds = [], []
    for task, found in task_reports.items():
        methods = found["methods"]
        steps = math.ceil(sizes[task].train / settings.batch_size) * settings.epochs
        if "none" in methods and "uniform" in methods and steps:
            alone, grouped = methods["none"]["train_seconds"] / steps, methods["uniform"]["train_seconds"] / steps
            per_sequence = max(0.0, (grouped - alone) / (settings.batch_size * (settings.group_size - 1)))
            fits.append((max(0.0, alone - settings.batch_size * per_sequence), per_sequence))
        runs = sum(m["train_seconds"] * len(m["seeds"]) for m in methods.values())
        workers = min(settings.parallel_runs, sum(len(m["seeds"]) for m in methods.values()))
        if workers > 1 and found["stage_seconds"].get("students"):
            speeds.append(((runs / found["stage_seconds"]["students"]) - 1) / (workers - 1))
    if fits:
        rates["step_s"] = round(sum(f[0] for f in fits) / len(fits), 5)
        rates["sequence_s"] = round(sum(f[1] for f in fits) / len(fits), 8)
    if speeds:
        rates["parallel_efficiency"] = round(min(1.0, max(0.05, sum(speeds) / len(speeds))), 3)
    return rates


def markdown(report: dict, work: Path) -> str:
    from mmel_hf.workflows.study_report import cross_task_tables

    machine, plan = report["machine"], report["plan"]
    lines = [
        "# MMEL on GLUE at full size (one GPU call)",
        "",
        f"- Card: {machine.get('card', machine['device'])}; torch {machine['torch']}, transformers "
        f"{machine['transformers']}; {machine['date']}"
        + (" — **dry run** (tiny models, a few rows)" if report["dry_run"] else ""),
        f"- Encoder: `{report['models']['model']}` (teacher and students), fill-mask `{report['models']['mlm']}`; "
        f"{report['precision']}",
        f"- Plan: {plan['lines'][0].removeprefix('plan: ')}",
        *(f"- Cut: {cut}" for cut in report["cuts"]),
        f"- Time: {report['seconds']:.0f} s in all; per task (teacher / augmentation / students, seconds): "
        + "; ".join(
            f"{task} {s['teacher']:.0f} / {s['augmentation']:.0f} / {s['students']:.0f}"
            for task, s in report["stage_seconds"].items()
        ),
        "",
    ]
    reports = {task: json.loads((work / task / "results.json").read_text()) for task in report["tasks_done"]}
    if reports:
        lines += cross_task_tables(reports)
    for task in report["tasks_done"]:
        text = (work / task / "results.md").read_text()
        lines += ["", text.replace("\n## ", "\n### ").replace("# Study: ", "## Study: ").replace("![", "[curves: ")]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--glue-dir", default=str(ROOT / ".gpu_study" / "glue"), help="CoLA/ MRPC/ RTE/ STS-B/ folders."
    )
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_study_output"), help="gpu_study.json/.md go here.")
    parser.add_argument("--work-dir", default=None, help="Runs, caches and per-task reports (default: OUT/work).")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3, help="Student epochs (cut first when over the budget).")
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--parallel-runs", type=int, default=8, help="Student runs trained at once on the device.")
    parser.add_argument("--model", default="embedded", help="Encoder of the teacher and the students.")
    parser.add_argument("--mlm-model", default="embedded", help="Fill-mask model of Algorithm 2.")
    parser.add_argument("--max-train-samples", type=int, default=None, help="First N training rows (default: all).")
    parser.add_argument("--budget-s", type=float, default=420.0, help="Seconds the whole call may take (0: no limit).")
    parser.add_argument("--rates", default=None, help="A JSON of measured rates (a run's 'measured_rates').")
    parser.add_argument("--dry-run", action="store_true", help="Tiny models on the CPU, no budget cuts of tasks.")
    parser.add_argument("--plan-only", action="store_true", help="Print the plan and stop.")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import torch

    if not args.dry_run and not args.plan_only and not torch.cuda.is_available():
        print("gpu_study: no CUDA device here; use --dry-run to try the script on the CPU", file=sys.stderr)
        return 1
    if len(set(args.seeds)) < MIN_SEEDS and not args.dry_run:
        print(f"gpu_study: give at least {MIN_SEEDS} distinct seeds (intervals over seeds need them)", file=sys.stderr)
        return 1
    rates = dict(ESTIMATED_RATES)
    if args.rates:
        rates.update(json.loads(Path(args.rates).read_text()).get("measured_rates", {}))
    sizes = task_sizes(Path(args.glue_dir), args.tasks, args.max_train_samples)
    settings = Settings(
        seeds=list(args.seeds),
        epochs=args.epochs,
        teacher_epochs=args.teacher_epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        parallel_runs=args.parallel_runs,
    )
    plan = make_plan(sizes, settings, rates, 0.0 if args.dry_run else args.budget_s)
    for line in plan.lines():
        print(line, flush=True)
    if args.plan_only:
        return 0
    if not plan.tasks:
        print("gpu_study: nothing fits the budget; raise --budget-s or give fewer seeds/methods", file=sys.stderr)
        return 1

    from gpu_check import machine

    from mmel_hf.workflows.console import quiet_libraries
    from mmel_hf.workflows.study import run_study

    quiet_libraries(progress=False)  # a line per stage and run, as mmel-study prints (after the imports)
    out = Path(args.out)
    work = Path(args.work_dir) if args.work_dir else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    models = tiny_models(work) if args.dry_run else {"model": args.model, "mlm": args.mlm_model}

    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    report = {
        "machine": machine(device),
        "dry_run": args.dry_run,
        "models": {k: "tiny (dry run)" if args.dry_run else v for k, v in models.items()},
        "sizes": {name: asdict(size) for name, size in sizes.items()},
        "settings": asdict(plan.settings),
        "rates_used": rates,
        "rates_were": "measured (--rates)" if args.rates else "estimated",
        "plan": {"tasks": plan.tasks, "estimates": plan.estimates, "total": plan.total, "lines": plan.lines()},
        "budget_s": args.budget_s,
        "cuts": list(plan.cuts),
        "tasks_done": [],
        "stage_seconds": {},
        "results": {},
    }
    task_reports = {}
    for name in plan.tasks:
        elapsed = time.perf_counter() - started
        done = report["tasks_done"]
        off = (
            sum(report["stage_seconds"][t]["total"] for t in done) / sum(plan.estimates[t]["total"] for t in done)
            if done
            else 1.0
        )
        needed = plan.estimates[name]["total"] * max(off, 1.0)
        if not args.dry_run and args.budget_s and elapsed + needed > args.budget_s:
            report["cuts"].append(
                f"task {name} at {elapsed:.0f} s: it would need about {needed:.0f} s "
                f"(the finished tasks took {off:.2f}x their estimates), {args.budget_s - elapsed:.0f} s were left"
            )
            print(f"gpu_study: {report['cuts'][-1]}", flush=True)
            continue
        task_started = time.perf_counter()
        print(f"gpu_study: {name} ({sizes[name].train} training rows) ...", flush=True)
        found = run_study(
            study_config(name, args, plan.settings, work, models),
            say=lambda line, n=name: print(f"  {n}: {line}", flush=True),
        )
        found["started_after_s"] = round(task_started - started, 1)
        task_reports[name] = found
        stages = dict(found["stage_seconds"])
        stages["total"] = round(time.perf_counter() - task_started, 1)
        report["stage_seconds"][name] = stages
        report["tasks_done"].append(name)
        report["results"][name] = {
            k: found[k] for k in ("metric", "split", "methods", "comparisons", "verdict", "teacher", "evaluation")
        }
        report["precision"] = found["config"]["precision"]
        report["seconds"] = round(time.perf_counter() - started, 1)
        report["measured_rates"] = measured_rates(task_reports, sizes, plan.settings)
        write_outputs(report, out, work)  # after every task: a call cut short keeps what finished
    report["seconds"] = round(time.perf_counter() - started, 1)
    report.setdefault("precision", None)
    write_outputs(report, out, work)
    print(f"gpu_study: {report['seconds']:.0f} s; wrote {out / 'gpu_study.json'} and {out / 'gpu_study.md'}")
    return 0


def write_outputs(report: dict, out: Path, work: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_study.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "gpu_study.md").write_text(markdown(report, work))


if __name__ == "__main__":
    sys.exit(main())
