"""Bort: optimal subarchitecture of BERT, on MXNet 1.9.1 and GluonNLP 0.10."""

__version__ = "0.1.0"
