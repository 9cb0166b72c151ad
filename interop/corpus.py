"""The texts every case sends: a query and documents with distinct, clearly ranked scores."""

from __future__ import annotations

QUERY = "How do I descale an espresso machine?"

DOCUMENTS: list[str] = [
    "Descale the espresso machine every month with a citric acid solution.",
    "Paris is the capital and largest city of France.",
    "Run a descaling solution through the boiler, then flush it twice with clean water.",
    "Bananas are rich in potassium and easy to digest.",
    "Hard water leaves limescale in the espresso machine's boiler and pipes.",
    "The Berlin Wall fell in November 1989.",
    "Grind the coffee beans just before brewing for the best espresso.",
    "Vinegar can descale a kettle, but it may leave a smell in an espresso machine.",
    "Photosynthesis turns light, water and carbon dioxide into sugar.",
    "A milk frother should be wiped and purged after every use.",
    "The Pacific is the largest and deepest ocean on Earth.",
    "Check the manual: some espresso machines have a descaling programme.",
]

OTHER_QUERIES: list[str] = [
    "What is the capital of France?",
    "Which fruit has a lot of potassium?",
]


#: Distinct texts beyond every limit set here (Infinity takes 12 a request in the kit).
MANY_DOCUMENTS: list[str] = [
    *DOCUMENTS,
    *(f"{text} (second copy {number})" for number, text in enumerate(DOCUMENTS[:4])),
]


def all_texts() -> list[str]:
    """Every text the kit sends, for the tiny model's vocabulary."""
    return [QUERY, *OTHER_QUERIES, *DOCUMENTS]
