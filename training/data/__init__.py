"""What a run reads: the variant Dataset, the joint transforms, artefact augmentation, folds and conditions."""
