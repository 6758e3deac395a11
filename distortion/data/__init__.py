"""What datasets, datamodules and modules share: the named batches and the seeded choice of a subset."""
