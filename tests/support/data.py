"""Example data and the deterministic scoring rule every fake rerank service in the tests uses."""

from __future__ import annotations

import json
import re
from typing import Any

API_KEY = "sk-test-SECRET-0123456789"

# The API documentation's own example: seven documents, of which 0, 6 and 4 come back.
SEED_DOCUMENTS = [
    "Organic skincare for sensitive skin with aloe vera and chamomile: Imagine the soothing "
    "embrace of nature with our organic skincare range, crafted specifically for sensitive "
    "skin. Infused with the calming properties of aloe vera and chamomile, each product "
    "provides gentle nourishment and protection. Say goodbye to irritation and hello to a "
    "glowing, healthy complexion.",
    "New makeup trends focus on bold colors and innovative techniques.",
    "Bio-Hautpflege für empfindliche Haut mit Aloe Vera und Kamille.",
    "Neue Make-up-Trends setzen auf kräftige Farben und innovative Techniken.",
    "Cuidado de la piel orgánico para piel sensible con aloe vera y manzanilla: Descubre el "
    "poder de la naturaleza con nuestra línea de cuidado de la piel orgánico, diseñada "
    "especialmente para pieles sensibles. Enriquecidos con aloe vera y manzanilla, estos "
    "productos ofrecen una hidratación y protección suave. Despídete de las irritaciones y "
    "saluda a una piel radiante y saludable.",
    "Las nuevas tendencias de maquillaje se centran en colores vivos y técnicas innovadoras.",
    "针对敏感肌专门设计的天然有机护肤产品:体验由芦荟和洋甘菊提取物带来的自然呵护。"
    "我们的护肤产品特别为敏感肌设计,温和滋润,保护您的肌肤不受刺激。让您的肌肤告别不适,"
    "迎来健康光彩。",
]
SEED_QUERY = "Organic skincare products for sensitive skin"
SEED_RESPONSE: dict[str, Any] = {
    "results": [
        {
            "document": {"text": SEED_DOCUMENTS[0]},
            "index": 0,
            "relevance_score": 0.8783142566680908,
        },
        {
            "document": {"text": SEED_DOCUMENTS[6]},
            "index": 6,
            "relevance_score": 0.8783142566680908,
        },
        {
            "document": {"text": SEED_DOCUMENTS[4]},
            "index": 4,
            "relevance_score": 0.8624675869941711,
        },
    ],
    "usage": {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 815,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
}

WORD = re.compile(r"\w+")


def keyword_score(query: str, document: str) -> float:
    """A deterministic stand-in for a model: the share of query words found in the document,
    plus a tiny length term so that scores rarely tie; between 0 and about 1."""
    words = set(WORD.findall(query.lower()))
    found = set(WORD.findall(document.lower()))
    share = len(words & found) / len(words) if words else 0.0
    return round(share + min(len(document), 999) / 1e6, 9)


def rank_body(body: dict[str, Any]) -> dict[str, Any]:
    """Answer a generic-dialect request body as a well-behaved server would (documents may
    also be under ``input``, Mixedbread's, or ``input.documents``, DashScope's; objects are
    scored by their JSON)."""
    if "documents" in body:
        documents, query = body["documents"], body["query"]
    elif isinstance(body.get("input"), dict):
        documents, query = body["input"]["documents"], body["input"]["query"]
    else:
        documents, query = body["input"], body["query"]
    texts = [d if isinstance(d, str) else json.dumps(d) for d in documents]
    results = [
        {"index": i, "relevance_score": keyword_score(query, d), "document": {"text": d}}
        for i, d in enumerate(texts)
    ]
    results.sort(key=lambda r: (-r["relevance_score"], r["index"]))
    top_n = body.get("top_n", body.get("top_k", (body.get("parameters") or {}).get("top_n")))
    if top_n is not None:
        results = results[:top_n]
    return {"results": results, "usage": {"total_tokens": 10 * len(documents)}}
