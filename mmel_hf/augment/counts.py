"""What a job produced, counted: per block (stored in its manifest) and for the job (summed)."""

from __future__ import annotations

from ..schema import augmented_column
from ..tasks.registry import TaskSpec


def shard_counts(part, new_columns, spec: TaskSpec, normalise) -> dict:
    """Of one shard: examples, augmented samples, samples distinct from their original and their siblings,
    and samples that reproduce their original. Originals are compared as the fill-mask tokenizer writes
    them back (``normalise``: lower case, spacing ...), as the samples are, so like is compared with like.
    ``new_columns``: the shard's new columns (a Dataset or a dict); only the ``augmented_*`` ones are read."""
    originals = list(zip(*(normalise(list(part[c])) for c in spec.text_columns)))
    groups = zip(*(list(new_columns[augmented_column(c)]) for c in spec.text_columns))
    total = distinct = duplicates = 0
    for original, per_column in zip(originals, groups):
        group = list(zip(*per_column))
        total += len(group)
        distinct += len(set(group) - {original})
        duplicates += sum(sample == original for sample in group)
    return {
        "examples": len(originals),
        "augmented_samples": total,
        "distinct_samples": distinct,
        "original_duplicates": duplicates,
    }


def job_counts(shard_counts: list[dict], dataset) -> dict:
    """The job's counts from its shards' (summed), with the share of distinct samples and the split sizes."""
    keys = ("examples", "augmented_samples", "distinct_samples", "original_duplicates")
    sums = {key: sum(counts[key] for counts in shard_counts) for key in keys}
    total = sums["augmented_samples"]
    found = {
        "examples": sums["examples"],
        "augmented_samples": total,
        "distinct_ratio": sums.pop("distinct_samples") / total if total else 0.0,
        "original_duplicates": sums["original_duplicates"],
        "splits": {s: len(d) for s, d in dataset.items()},
    }
    removed = sorted({k for counts in shard_counts for k in counts if k.startswith("removed_")})
    if removed:  # candidates a generating augmenter left out (the same as the original, repeated, empty)
        found["removed"] = {k.removeprefix("removed_"): sum(c.get(k, 0) for c in shard_counts) for k in removed}
    return {**found, **label_safety(shard_counts)}


def label_safety(shard_counts: list[dict]) -> dict:
    """The teacher's verdict on the samples (not under --label-source original), named as the trainer logs it: the
    share it labels another class than their original (``teacher_disagreement``), for regression the share more
    than 0.5 away (``teacher_shift``) and the mean distance; and how many --drop-disagreeing left out."""
    labelled = sum(counts.get("teacher_labelled_samples", 0) for counts in shard_counts)
    if not labelled:
        return {}
    share = sum(c.get("teacher_disagreements", 0) for c in shard_counts) / labelled
    if any("teacher_shift_sum" in counts for counts in shard_counts):  # the trainer's names: mmel/teacher_shift
        found = {
            "teacher_shift": share,
            "teacher_mean_shift": sum(c.get("teacher_shift_sum", 0.0) for c in shard_counts) / labelled,
        }
    else:  # mmel/teacher_disagreement
        found = {"teacher_disagreement": share}
    if any("dropped_disagreeing" in counts for counts in shard_counts):
        found["dropped_disagreeing"] = sum(c.get("dropped_disagreeing", 0) for c in shard_counts)
    return found
