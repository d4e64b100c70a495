"""Retrieval over knowledge-base articles: which article answers a message, and how well.

TF-IDF over words and character n-grams of title + body: characters carry French
inflections ("facturé" / "factures") and typos, words carry exact terms. The title counts
twice because it says what the article is for; the body mostly says how.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from .text import fold
from .types import Article


@dataclass(frozen=True, slots=True)
class Passage:
    article: Article
    score: float  # cosine similarity, 0..1


class KnowledgeBase:
    def __init__(self, articles: tuple[Article, ...]):
        self.articles = articles
        self._vectorizers = None
        self._matrix = None
        if articles:
            self._fit()

    def _fit(self) -> None:
        docs = [f"{a.title}. {a.title}. {a.body}" for a in self.articles]
        self._vectorizers = (
            TfidfVectorizer(preprocessor=fold, ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(preprocessor=fold, analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True),
        )
        self._matrix = normalize(hstack([v.fit_transform(docs) for v in self._vectorizers]).tocsr())

    def search(self, text: str, *, limit: int = 3) -> list[Passage]:
        """Best articles first; empty when the base is empty."""
        if self._matrix is None:
            return []
        query = normalize(hstack([v.transform([text]) for v in self._vectorizers]).tocsr())
        scores = (self._matrix @ query.T).toarray().ravel()
        order = scores.argsort()[::-1][:limit]
        return [Passage(self.articles[i], float(scores[i])) for i in order if scores[i] > 0]
