"""Search backends: they take a plan and an evaluator and return trial results (Optuna in-process, Ray).
"""
