"""The search: budget, metrics, the evaluator and its worker processes, the backends (Optuna, Ray), ensemble
selection, the final model, the leaderboard and the progress bar.
"""
