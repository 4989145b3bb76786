"""Baselines Deep Nash-Q is compared with: independent DQN and tabular learners."""
