"""Prioritized variants of Stable-Baselines3's and sb3-contrib's off-policy algorithms.

Each is its upstream class (constructor, hyperparameters, policies, saved files) with prioritized replay
(:class:`~sb3_ext.common.prioritized.PrioritizedReplay`); its ``train`` differs from the upstream one only where
prioritization needs it.
"""
