"""Pieces shared by several sb3-ext modules."""
