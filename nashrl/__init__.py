"""nashrl: Deep Nash Q-learning for oligopoly market games on Ray RLlib."""

__version__ = "0.1.0"
