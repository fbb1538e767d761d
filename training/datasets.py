"""Kept so that ``from training.datasets import HAMArtefacts`` (the documented user path) keeps working;
the Dataset lives in :mod:`training.data.datasets`."""

from training.data.datasets import HAMArtefacts

__all__ = ["HAMArtefacts"]
