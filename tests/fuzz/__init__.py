"""The fuzzing suite of issue 11: seeded generators of random graphs, corrupt model files,
hostile names and command lines, a runner that isolates each case in a worker process, and
the classifier of outcomes. tests/fuzz/test_fuzz.py runs a few hundred cases in the test
suite; bench/fuzz.py runs any number and prints the counts table."""
