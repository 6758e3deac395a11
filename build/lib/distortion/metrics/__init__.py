"""What is measured: content statistics beside their baseline, verification (EER), open-set 1:N, unlinkability,
collapse."""
