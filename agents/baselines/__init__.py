"""The baselines: autoscalers and fixed deployments (VPA, HPA, MArk, Autopilot, static
provisioning) and the helpers they share."""
