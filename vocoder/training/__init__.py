"""The pieces of the training loop behind `python -m vocoder.train`: no Hydra in here."""
