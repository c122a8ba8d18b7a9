"""Sync: one library across devices: shared data as an operation log (HLC, merge, history), the catalogue of other devices, the protocol."""
