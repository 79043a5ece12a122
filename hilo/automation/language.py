"""Guess whether a customer's message is Spanish or English (the languages Hilo speaks).

A small scorer on very common words and Spanish-only letters; it answers None when the
text is too short or too mixed to tell, and conditions then fall back to other facts.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[a-záéíóúüñ]+")
SPANISH = frozenset(
    [
        "el",
        "la",
        "los",
        "las",
        "un",
        "una",
        "unos",
        "unas",
        "de",
        "del",
        "al",
        "y",
        "o",
        "que",
        "en",
        "es",
        "son",
        "por",
        "para",
        "con",
        "sin",
        "mi",
        "mis",
        "tu",
        "tus",
        "su",
        "sus",
        "no",
        "sí",
        "si",
        "pero",
        "como",
        "cuando",
        "donde",
        "porque",
        "hola",
        "gracias",
        "buenos",
        "buenas",
        "días",
        "tardes",
        "noches",
        "quiero",
        "necesito",
        "tengo",
        "puede",
        "pueden",
        "está",
        "están",
        "estoy",
        "muy",
        "más",
        "ayuda",
        "pedido",
        "cuenta",
        "factura",
        "precio",
        "hay",
        "ya",
        "favor",
    ]
)
ENGLISH = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "that",
        "in",
        "is",
        "are",
        "by",
        "for",
        "with",
        "without",
        "my",
        "your",
        "his",
        "her",
        "their",
        "not",
        "yes",
        "if",
        "but",
        "how",
        "when",
        "where",
        "because",
        "hello",
        "hi",
        "thanks",
        "thank",
        "you",
        "good",
        "morning",
        "afternoon",
        "evening",
        "want",
        "need",
        "have",
        "has",
        "can",
        "could",
        "is",
        "was",
        "were",
        "am",
        "very",
        "more",
        "help",
        "order",
        "account",
        "invoice",
        "price",
        "there",
        "please",
        "what",
        "this",
        "it",
    ]
)
SPANISH_LETTERS = frozenset("ñ¿¡áéíóú")


def detect(text: str | None) -> str | None:
    """'es', 'en' or None."""
    if not text:
        return None
    lowered = text.lower()
    words = WORD.findall(lowered[:2000])
    spanish = sum(1 for w in words if w in SPANISH) + 2 * sum(1 for ch in lowered[:2000] if ch in SPANISH_LETTERS)
    english = sum(1 for w in words if w in ENGLISH)
    if spanish == english or max(spanish, english) < 2:
        return None
    if spanish >= 1.5 * english:
        return "es"
    if english >= 1.5 * spanish:
        return "en"
    return None
