"""Where each quantity sits in an InfAdapter-v0 observation (the table in the env docstring).

Agents read observations through these names, so that the layout has one definition.
"""

from __future__ import annotations

N_VARIANTS = 5
HISTORY_MINUTES = 10

MINUTE_PEAKS = slice(0, 10)  # peak rate of each of the last 10 minutes, oldest first (req/s)
MEAN_RATE = 10  # mean arrival rate of the last interval (req/s)
PEAK_RATE = 11  # peak arrival rate of the last interval (req/s)
CORES = slice(12, 17)  # target cores per replica, per variant
REPLICAS = slice(17, 22)  # target replicas, per variant
LOADING_LEFT = slice(22, 27)  # seconds before the target serves, per variant
UTILISATION = slice(27, 32)  # busy fraction of the servers last interval, per variant
BACKLOG = slice(32, 37)  # requests waiting in each variant's queues
VIOLATION_RATE = 37  # SLO-violation fraction of the last interval's arrivals
DROP_RATE = 38  # dropped fraction of the last interval's arrivals
RESOURCE_COST = 39  # target cores / budget
PROGRESS = 40  # fraction of the episode played
P99_OVER_SLO = slice(41, 46)  # last interval's P99 latency / SLO, per variant (clipped at 20)
SIZE = 46
