"""The main job's local pipeline: a pretrained model and a short real training run, packaged by
the packaging custom resource's code and deployed with the synthesized stage's own recipes to
the simulated core device (:mod:`device_sim`), which classifies real photos."""
