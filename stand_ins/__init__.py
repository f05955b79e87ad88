"""Stand-ins the product may import: what AWS would produce, built on this machine.

- :mod:`stand_ins.neo_model`: a tiny classifier in SageMaker Neo's output layout that the real
  ``libdlr.so`` runs (``device_sim`` and ``bench`` use it where Neo's compiled model would be);
- :mod:`stand_ins.digits`: scikit-learn's bundled digits as an image-folder data set (the main
  job's short training run, and the tests' trained model).

Tests import them too; nothing here imports ``tests``.
"""
