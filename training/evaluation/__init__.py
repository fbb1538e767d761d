"""Evaluation of trained models: metrics with confidence intervals, McNemar tests, bias, flips, Grad-CAM.

Reads the prediction tables of a runs folder (``<runs>/<arch>/<train_variant>/fold<k>/predictions/``)
and writes tidy result tables for the site export. Heavy libraries are imported inside functions.
"""
