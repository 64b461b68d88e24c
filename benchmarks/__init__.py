"""Benchmarks: the peer harness (``python -m benchmarks.peers``) and the figures each issue asks for."""
