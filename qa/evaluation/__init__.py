"""Evaluation: the gold-set and RealTime QA runs, their metrics and truthfulness, and reports."""
