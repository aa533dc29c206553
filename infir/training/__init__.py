"""Training: the LightningModule, LR schedules, callbacks, logging and checkpoint plumbing."""
