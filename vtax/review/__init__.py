"""The review module: session records along ask -> handle -> check -> evaluate -> deliver."""
