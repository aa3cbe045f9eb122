"""gansweep's engine: configs, data, models, training pieces, Ray Tune launch, results and the CLI."""
