"""Documents: retrieval quality on a labelled corpus, indexing speed, query latency, time to "ready".

Run: .venv/bin/python -m bench.documents
- Quality: bench/corpus.py's 24 files (218 pages, PDF, DOCX, PPTX, XLSX, HTML, Markdown, text; English
  and Portuguese) indexed as the app does, then each of its 134 labelled questions asked of BM25 alone,
  dense alone and the hybrid the app uses: hit@1, hit@5 and MRR@10. A passage is a hit when it comes from
  the labelled file and location and holds the planted fact.
- Indexing: pages/s and passages/s for the whole corpus (model already loaded), and the process's peak
  memory while indexing.
- Query latency at 1,000 and 10,000 passages (the corpus's passages repeated with numbered variations and
  their vectors slightly moved): the question's embedding plus the hybrid retrieval, as a chat turn pays it.
- A 50-page PDF from attach to "ready", in a fresh process (loading the model included) and warm.
- Cold start: what the app's own modules import at start-up (torch must not be among them).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from bench import corpus
from bench.stats import Figure, summarise

SECTION = "9 documents"
QUERY_REPEATS = 40


def _peak_memory(stop: threading.Event, peak: list[int]) -> None:
    process = psutil.Process()
    while not stop.wait(0.05):
        peak[0] = max(peak[0], process.memory_info().rss)


def _hit(passage_text: str, location: str, file: str, expected_file: str, question: corpus.Question) -> bool:
    if file != expected_file or " ".join(question.fact.split()) not in " ".join(passage_text.split()):
        return False
    if question.file.endswith((".pdf", ".pptx")):
        return location == question.location
    if question.file.endswith(".xlsx"):
        return location.startswith(f"{question.location},")
    return True


def quality_and_indexing() -> list[Figure]:
    """Index the corpus, then score every question with each retriever."""
    from llama_index.core.schema import QueryBundle

    from controller import embeddings
    from controller.documents import Documents
    from controller.retrieval import fused, retrievers
    from model.file_store import FileStore

    made = corpus.build()
    embeddings.embedder()  # loaded first: the throughput below is indexing's own
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        documents = Documents(FileStore(Path(folder)))
        stop, peak = threading.Event(), [psutil.Process().memory_info().rss]
        watcher = threading.Thread(target=_peak_memory, args=(stop, peak), daemon=True)
        watcher.start()
        before = peak[0]
        started = time.perf_counter()
        attached = {name: documents.attach(name, data) for name, data in made.files.items()}
        assert documents.wait(3600), "indexing did not finish"
        failed = {
            n: documents.status(a.sha256).error
            for n, a in attached.items()
            if not documents.status(a.sha256).ready
        }
        assert not failed, failed
        seconds = time.perf_counter() - started
        stop.set()
        watcher.join()
        loaded = {name: documents.store.load_index(a.sha256, embeddings.NAME) for name, a in attached.items()}
        chunks = sum(len(v[0]) for v in loaded.values() if v)
        figures += [
            summarise(
                SECTION,
                f"index {made.pages} pages, {len(made.files)} files: pages/s",
                "pages/s",
                [made.pages / seconds],
            ),
            summarise(SECTION, f"index: passages/s ({chunks} passages)", "passages/s", [chunks / seconds]),
            summarise(SECTION, "index: peak memory of the process (model loaded)", "MB", [peak[0] / 2**20]),
            summarise(SECTION, "index: memory added while indexing", "MB", [(peak[0] - before) / 2**20]),
        ]
        by_sha = {a.sha256: name for name, a in attached.items()}
        parts = [(a.sha256, *loaded[name]) for name, a in attached.items()]
        bm25, dense = retrievers(parts, 10)
        hybrid = fused([bm25, dense], 10)
        model = embeddings.embedder()
        scores: dict[str, dict[str, list[float]]] = {}
        for question in made.questions:
            bundle = QueryBundle(question.text, embedding=model.get_query_embedding(question.text))
            for label, retriever in (("BM25", bm25), ("dense", dense), ("hybrid", hybrid)):
                found = retriever.retrieve(bundle)[:10]
                rank = next(
                    (
                        i
                        for i, n in enumerate(found, 1)
                        if _hit(
                            n.node.get_content(),
                            n.node.metadata["loc"],
                            by_sha[n.node.metadata["sha"]],
                            question.file,
                            question,
                        )
                    ),
                    None,
                )
                row = scores.setdefault(label, {"hit@1": [], "hit@5": [], "MRR@10": []})
                row["hit@1"].append(float(rank == 1))
                row["hit@5"].append(float(rank is not None and rank <= 5))
                row["MRR@10"].append(1 / rank if rank else 0.0)
        for label, row in scores.items():
            for metric, values in row.items():
                budget = "≥ 0.95" if (label, metric) == ("hybrid", "hit@5") else ""
                mean = sum(values) / len(values)
                figures.append(
                    Figure(
                        SECTION,
                        f"{label} {metric} ({len(values)} questions)",
                        "ratio",
                        mean,
                        mean,
                        len(values),
                        budget,
                    )
                )
        for language in ("en", "pt"):
            picked = [i for i, q in enumerate(made.questions) if q.language == language]
            mean = sum(scores["hybrid"]["hit@5"][i] for i in picked) / len(picked)
            figures.append(
                Figure(SECTION, f"hybrid hit@5, {language} questions only", "ratio", mean, mean, len(picked))
            )
        figures += _latency(parts, made.questions)
    return figures


def _latency(parts: list, questions: list[corpus.Question]) -> list[Figure]:
    """A chat turn's retrieval: embed the question, search BM25 and dense, fuse; at 1,000 and 10,000."""
    from llama_index.core.schema import QueryBundle

    from controller import embeddings
    from controller.retrieval import hybrid_retriever
    from model.file_store import Passage

    model = embeddings.embedder()
    rng = np.random.default_rng(3)
    texts = [p for _, passages, _ in parts for p in passages]
    vectors = np.concatenate([v for _, _, v in parts])
    figures = []
    for size in (1_000, 10_000):
        picks = np.arange(size) % len(texts)
        passages = [Passage(f"{texts[i].text} (copy {n})", texts[i].location) for n, i in enumerate(picks)]
        moved = vectors[picks] + rng.normal(0, 0.01, (size, vectors.shape[1])).astype(np.float32)
        started = time.perf_counter()
        retriever = hybrid_retriever([("f" * 64, passages, moved)], 6)
        build_ms = (time.perf_counter() - started) * 1000
        samples, retrieval = [], []
        for n in range(QUERY_REPEATS + 3):
            question = questions[n % len(questions)].text
            started = time.perf_counter()
            vector = model.get_query_embedding(question)
            middle = time.perf_counter()
            retriever.retrieve(QueryBundle(question, embedding=vector))
            ended = time.perf_counter()
            if n >= 3:  # warm-up
                samples.append((ended - started) * 1000)
                retrieval.append((ended - middle) * 1000)
        budget = "p95 ≤ 50" if size == 10_000 else ""
        figures += [
            summarise(SECTION, f"query at {size:,} passages: embed + retrieve", "ms", samples, budget),
            summarise(SECTION, f"query at {size:,} passages: retrieve only", "ms", retrieval),
            summarise(
                SECTION, f"build the retriever for {size:,} passages (once per file set)", "ms", [build_ms]
            ),
        ]
    return figures


_READY = """
import sys, time, tempfile, pathlib
started = time.perf_counter()
from controller.documents import Documents
from model.file_store import FileStore
documents = Documents(FileStore(pathlib.Path(tempfile.mkdtemp())))
data = pathlib.Path(sys.argv[1]).read_bytes()
for round in range(2):
    began = time.perf_counter()
    documents.attach(f"fifty-{round}.pdf", data + b" " * round)  # other bytes: indexed again
    documents.wait(3600)
    print(time.perf_counter() - began, flush=True)
"""


def ready_time(pages: int = 50) -> list[Figure]:
    """A PDF of `pages` pages from attach to ready: cold (new process, model loaded on the way) and warm."""
    from tests import make_files

    writer = corpus._Writer(11)
    pdf = make_files.pdf(["\n\n".join(writer.paragraph("en") for _ in range(5)) for _ in range(pages)])
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(pdf)
        file.flush()
        out = subprocess.run(
            [sys.executable, "-c", _READY, file.name],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path.cwd(),
        )
    cold, warm = (float(line) for line in out.stdout.split())
    return [
        summarise(SECTION, f"{pages}-page PDF, attach to ready: first file of the process", "s", [cold]),
        summarise(SECTION, f"{pages}-page PDF, attach to ready: model already loaded", "s", [warm]),
    ]


_STARTUP = """
import sys, time
started = time.perf_counter()
import view.session, view.sidebar, view.chat_view, view.navigation  # what the chat page imports
print(time.perf_counter() - started, int("torch" in sys.modules), int("sentence_transformers" in sys.modules))
"""


def cold_start(runs: int = 3) -> list[Figure]:
    """The app's modules at start-up: their import time, and whether the embedding stack came with them."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", _STARTUP], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(runs)
    ]
    return [
        summarise(SECTION, "app start: import the chat page's modules", "s", [float(r[0]) for r in runs]),
        summarise(
            SECTION,
            "app start: torch or sentence-transformers imported (0 = no)",
            "count",
            [float(r[1]) + float(r[2]) for r in runs],
            "≤ 0",
        ),
    ]


def run(small: bool = False) -> list[Figure]:
    """Every documents figure (`small`: one start-up, a 5-page PDF)."""
    return cold_start(1 if small else 3) + ready_time(5 if small else 50) + quality_and_indexing()


if __name__ == "__main__":
    from bench.__main__ import table

    print(table(run()))
