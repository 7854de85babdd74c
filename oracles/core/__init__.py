"""The first-order pipeline: expression IR, its torch and SymPy renderings, expected gradients, verdicts and
failure messages."""
