"""The workflows behind the console scripts, one module each, over the library (trainer, augment, tasks, vision).

- :mod:`~mmel_hf.workflows.train` (``mmel-train``), with :mod:`~mmel_hf.workflows.train_config`;
- :mod:`~mmel_hf.workflows.study` (``mmel-study``), written up by :mod:`~mmel_hf.workflows.study_report`;
- :mod:`~mmel_hf.workflows.main_job` (``mmel-main``);
- :mod:`~mmel_hf.workflows.train_vision` (``mmel-train-vision``).

``augment_cli`` holds the thin console entry points; ``mmel-augment``'s workflow is :mod:`mmel_hf.augment.pipeline`.
"""
