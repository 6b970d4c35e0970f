"""GaC (Geometry-as-Context): the model, its training and its gac-bench method. See gac/README.md."""
