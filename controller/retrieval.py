"""Hybrid retrieval over passages already embedded: BM25 and dense, fused by weighted relative score."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.retrievers.bm25 import BM25Retriever

from model.file_store import Passage


@functools.cache
def _stopwords() -> list[str]:
    """Words too common to tell passages apart, in both languages bnaGPT's users write (bm25s' lists)."""
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_PORTUGUESE

    return sorted(set(STOPWORDS_EN) | set(STOPWORDS_PORTUGUESE))


class DenseRetriever(BaseRetriever):
    """Cosine similarity against a matrix of normalised embeddings: one matrix product per query."""

    def __init__(self, nodes: Sequence[TextNode], vectors: np.ndarray, top_k: int) -> None:
        super().__init__()
        self._nodes = list(nodes)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._matrix = vectors / np.maximum(norms, 1e-12)
        self._top_k = top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if query_bundle.embedding is None:
            raise ValueError("the question must come with its embedding")
        query = np.asarray(query_bundle.embedding, dtype=np.float32)
        scores = self._matrix @ (query / max(float(np.linalg.norm(query)), 1e-12))
        k = min(self._top_k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best])]
        return [NodeWithScore(node=self._nodes[i], score=float(scores[i])) for i in best]


def hybrid_retriever(files: Sequence[tuple[str, list[Passage], np.ndarray]], top_k: int) -> BaseRetriever:
    """A retriever over the passages of files given as (sha256, passages, vectors)."""
    bm25, dense = retrievers(files, top_k)
    return fused([bm25, dense], top_k)


def retrievers(
    files: Sequence[tuple[str, list[Passage], np.ndarray]], top_k: int
) -> tuple[BaseRetriever, BaseRetriever]:
    """The two halves of the hybrid retriever, (BM25, dense), each proposing more than `top_k`."""
    nodes: list[TextNode] = []
    for sha, passages, _ in files:
        nodes += [
            TextNode(text=p.text, id_=f"{sha}:{i}", metadata={"sha": sha, "loc": p.location})
            for i, p in enumerate(passages)
        ]
    vectors = np.concatenate([v for _, _, v in files]) if files else np.zeros((0, 1), np.float32)
    deep = max(top_k * 3, 10)  # each side proposes more than asked, so that fusion has a choice
    bm25 = BM25Retriever.from_defaults(
        nodes=nodes, similarity_top_k=min(deep, len(nodes)), language=_stopwords(), verbose=False
    )
    return bm25, DenseRetriever(nodes, vectors, deep)


# BM25 weighs more: on bench/documents.py's corpus (questions that name what they ask about, among
# look-alike facts about other names), reciprocal-rank fusion got hit@5 0.78 and equal weights 0.93, against
# 0.97 for 0.8/0.2; the embeddings still bring passages that share the question's meaning but not its words.
WEIGHTS = (0.8, 0.2)


def fused(retrievers: list[BaseRetriever], top_k: int, weights: Sequence[float] = WEIGHTS) -> BaseRetriever:
    """BM25 and dense fused by their scores, each scaled to 0..1 and weighted; the best `top_k` kept."""
    kwargs: dict[str, Any] = {"mode": "relative_score", "num_queries": 1, "use_async": False}
    # num_queries=1: the question is not rewritten by an LLM, so MockLLM only fills the required slot.
    return QueryFusionRetriever(
        retrievers, llm=MockLLM(), similarity_top_k=top_k, retriever_weights=list(weights), **kwargs
    )


def rank(texts: Sequence[str], query: str, top_k: int) -> list[int]:
    """The indexes of the `top_k` texts BM25 finds best for `query` (web pages, read once: no embeddings)."""
    if not texts:
        return []
    in_order = list(range(min(top_k, len(texts))))  # the search engine's own order
    nodes = [TextNode(text=t, id_=str(i)) for i, t in enumerate(texts)]
    try:
        bm25 = BM25Retriever.from_defaults(
            nodes=nodes, similarity_top_k=min(top_k, len(nodes)), language=_stopwords(), verbose=False
        )
        found = [int(hit.node.node_id) for hit in bm25.retrieve(query) if (hit.score or 0) > 0]
    except ValueError:  # bm25s cannot index texts (or read a query) made only of stopwords
        return in_order
    return found or in_order  # no word in common
