"""Vulnerability assessment and risk: questionnaire, evidence pre-fill, scores, files.

Data path: :mod:`.questionnaire` (the EU-VAT-style model, as data) → :mod:`.evidence`
(pre-fill from the analysis, overridable by assessors) → :mod:`.scores` (``R_100``, bands,
``why``); :mod:`.files` reads and writes the assessors' YAML/JSON/CSV and merges a fresh
pre-fill into their work without losing it.
"""
