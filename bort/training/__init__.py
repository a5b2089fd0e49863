"""Pieces shared by fine-tuning and pretraining: optimizer, schedule, gradient handling, checkpoints, logs."""
