"""Learning algorithms: Deep Nash-Q on RLlib and the baselines it is compared with."""
