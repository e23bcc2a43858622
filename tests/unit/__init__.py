"""Unit tests: one module of plurspool at a time, in process, no peers."""
