"""Economic benchmarks a learned policy is compared with: closed forms, grid equilibria, MPE."""
