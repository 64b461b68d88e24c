"""Learning to learn: meta-train on sinusoids, then fit a new one from 5 points (needs torch).

Run: python examples/few_shot_sinusoid.py   (AUTOML_EXAMPLE_BUDGET=5 for a quick run)
"""

import os

import numpy as np
import torch

import automl
from automl.learn2learn.series import sinusoid

BUDGET = float(os.environ.get("AUTOML_EXAMPLE_BUDGET", 60))

if __name__ == "__main__":
    torch.set_num_threads(1)
    meta = automl.meta_fit(sinusoid(), algorithm="metasgd", shots=5, time_budget=BUDGET)
    print(f"meta-trained {meta.algorithm} for {meta.seconds:.0f} s; validation MSE {meta.validation_score:.3f}")

    new_task = sinusoid().episode(np.random.default_rng(42), shots=5, query=100)  # a sinusoid never seen
    adapted = meta.adapt(new_task.X_support, new_task.y_support, steps=1)
    mse = float(np.mean((adapted.predict(new_task.X_query) - new_task.y_query) ** 2))
    print(f"one gradient step on 5 points: MSE {mse:.3f} on 100 new points of that sinusoid "
          f"(predicting zero: {float(np.mean(new_task.y_query ** 2)):.3f})")
    print(meta.evaluate(sinusoid(), shots=5, steps=1, episodes=200))

    meta.save("sine_meta.pkl")
    again = automl.load("sine_meta.pkl")
    assert np.allclose(again.adapt(new_task.X_support, new_task.y_support, steps=1).predict(new_task.X_query),
                       adapted.predict(new_task.X_query))
    os.remove("sine_meta.pkl")
