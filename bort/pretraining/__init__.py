"""Pretraining Bort by knowledge distillation: data creation (`data`, `masking`, `shards`), reading shards in
batches (`dataset`), the distillation loss (`loss`), the frozen teacher (`teacher`), fp16 loss scaling
(`loss_scaler`) and the training loop (`trainer`). Nothing is imported here so `import bort` stays fast."""
