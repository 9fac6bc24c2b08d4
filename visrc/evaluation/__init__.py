"""Video AP on YouTube-VIS (the official metric, fast and oracle-tested) and results export."""
from visrc.evaluation.export import load_results, validate_results, write_results, write_submission_zip
from visrc.evaluation.ytvis_eval import SUMMARY_KEYS, YTVISEvalResult, evaluate_ytvis

__all__ = ["SUMMARY_KEYS", "YTVISEvalResult", "evaluate_ytvis", "load_results", "validate_results",
           "write_results", "write_submission_zip"]
