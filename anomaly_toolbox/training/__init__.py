"""The training engine: what runs any network method from its first step to its final scores.

- :mod:`.engine`: the epoch loop (progress, divergence checks, TensorBoard scalars and image
  strips, several steps per loop iteration), per-epoch checks, checkpoints and resume;
- :mod:`.selection`: the best check of each selection rule, held and written as ``best_<rule>/``;
- :mod:`.evaluation`: batched scoring, the final model of the chosen rule, the test metrics of
  every rule's model;
- :mod:`.callbacks`: the hooks a method registers (as Keras ``fit`` takes callbacks);
- :mod:`.checkpoints`: epoch checkpoints held in memory between writes.

A method (:class:`~anomaly_toolbox.trainers.base.Trainer`) supplies its networks, optimizers,
losses, train step and score; the engine drives it. The engine imports no trainer.
"""
