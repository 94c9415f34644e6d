"""Dataset management: the catalog of public datasets, download with resume and verification, inspect
(layout, counts, problem files) and the built-in demo data. Builds on ``translate.data`` (image reading,
layout detection); the training pipeline never imports this package."""
