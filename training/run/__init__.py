"""Running the study: the training engine, inference, prediction, the job grid (sweep) and the showcase."""
