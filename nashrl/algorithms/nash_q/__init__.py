"""Deep Nash Q-learning on RLlib's new API stack."""

from nashrl.algorithms.nash_q.config import NashQConfig

__all__ = ["NashQConfig"]
