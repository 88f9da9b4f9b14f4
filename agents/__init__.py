"""Policies for InfAdapter-v0."""
