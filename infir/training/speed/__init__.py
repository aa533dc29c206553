"""Training speed at scale: compilation, activation checkpointing, the chunked LM-head loss and FSDP2 sharding.

Each is a config switch whose default leaves the eager, single-device computation unchanged.
"""

# The accepted values of model.compile and model.loss (light: read by infir.config.checks before torch loads).
COMPILE_MODES = ("eager", "whole", "regional")
LOSSES = ("plain", "chunked")
