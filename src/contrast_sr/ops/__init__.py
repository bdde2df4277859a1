"""Numerical operators: selective scan, cross-scan helpers, MATLAB-style resize."""
