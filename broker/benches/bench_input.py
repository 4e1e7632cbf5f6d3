"""Writes N lines of 100 random letters (seeded: the same input every run),
the records the kcat benchmarks produce: bench_input.py PATH N"""
import random
import string
import sys

random.seed(7)
letters = string.ascii_letters
with open(sys.argv[1], "w") as f:
    for _ in range(int(sys.argv[2])):
        f.write("".join(random.choice(letters) for _ in range(100)) + "\n")
