"""The stages, a folder each: spec.py (its facts), run.py (its work), its helpers (lectern.stage_types)."""
