"""Learned policies (stable-baselines3): the agent that plays a checkpoint, the SB3 view of the
env, training and its experiments."""
