"""The compose topology for real (deploy/stack.py), driven by Chromium."""
