"""Planning agents: InfAdapter, MS+ and the oracle, and the exact solver of their integer program."""
