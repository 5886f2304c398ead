"""What a task is, for every command: the registry (GLUE, rt-polarity, custom tasks), the data sources and their
readers, and the GLUE metrics.

- :mod:`~mmel_hf.tasks.registry`: :class:`TaskSpec`, ``get_task``, ``custom_task``, the task options of every CLI;
- :mod:`~mmel_hf.tasks.sources`: ``load_task_data`` from the Hub, GLUE folders, CSV/TSV/JSON-lines or saved datasets;
- :mod:`~mmel_hf.tasks.metrics`: the GLUE metrics, with ``evaluate``'s keys and values.
"""

from .metrics import GlueMetric, glue_compute_metrics
from .registry import GLUE_TASKS, TaskArguments, TaskSpec, custom_task, get_task, known_tasks
from .sources import load_task_data

__all__ = [
    "GLUE_TASKS",
    "GlueMetric",
    "TaskArguments",
    "TaskSpec",
    "custom_task",
    "get_task",
    "glue_compute_metrics",
    "known_tasks",
    "load_task_data",
]
