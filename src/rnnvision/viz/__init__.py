"""Plots: training curves, confusion matrices, image grids, gate maps. All written atomically."""
