"""Kept so that ``from training.augment import RandomArtefact`` (the documented user path) keeps working;
the transform lives in :mod:`training.data.augment`."""

from training.data.augment import RandomArtefact

__all__ = ["RandomArtefact"]
