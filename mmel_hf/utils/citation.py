"""The paper this project implements, as every card and ``CITATION.cff`` cite it."""

from __future__ import annotations

__all__ = ["PAPER_ARXIV_ID", "PAPER_BIBTEX", "PAPER_TITLE", "PAPER_URL"]

PAPER_TITLE = "Reweighting Augmented Samples by Minimizing the Maximal Expected Loss"
PAPER_ARXIV_ID = "2103.08933"
PAPER_URL = f"https://arxiv.org/abs/{PAPER_ARXIV_ID}"
PAPER_BIBTEX = f"""@inproceedings{{yi2021reweighting,
  title         = {{{PAPER_TITLE}}},
  author        = {{Yi, Mingyang and Hou, Lu and Shang, Lifeng and Jiang, Xin and Liu, Qun and Ma, Zhi-Ming}},
  booktitle     = {{International Conference on Learning Representations (ICLR)}},
  year          = {{2021}},
  eprint        = {{{PAPER_ARXIV_ID}}},
  archivePrefix = {{arXiv}}
}}"""
