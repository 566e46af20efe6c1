"""The benchmark suites behind every performance figure in the README (`python -m vocoder.bench`)."""
