"""CITATION.cff and the cards cite the same paper; the file is valid CFF-shaped YAML."""

import yaml

from mmel_hf import __version__
from mmel_hf.utils.citation import PAPER_ARXIV_ID, PAPER_BIBTEX, PAPER_TITLE

ROOT = __import__("builders").REPO


def test_citation_file_names_the_paper_and_this_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["version"] == __version__ and cff["license"] == "Apache-2.0"
    paper = cff["preferred-citation"]
    assert paper["title"] == PAPER_TITLE and paper["year"] == 2021
    assert [a["family-names"] for a in paper["authors"]] == ["Yi", "Hou", "Shang", "Jiang", "Liu", "Ma"]
    assert PAPER_ARXIV_ID in paper["url"] and f"eprint        = {{{PAPER_ARXIV_ID}}}" in PAPER_BIBTEX
