"""Deployment: nginx.conf and the stack runner (stack.py)."""
