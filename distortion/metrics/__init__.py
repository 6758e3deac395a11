"""What is measured: content statistics beside their baseline, verification (EER), open-set 1:N, unlinkability,
readers beyond the project's own (pixel nearest neighbours), collapse."""
