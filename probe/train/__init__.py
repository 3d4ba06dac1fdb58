"""Training on the procedural sprites dataset: `sprites` (data), `trainer` (GANs), `factor_cnn` (the factor
measure's CNN), `quality` (factor distributions and Frechet distance of a generator). CLI: `probe train`."""
