"""Robustness: crashes, power cuts, faults, hostile input and security."""
