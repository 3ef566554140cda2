"""The tiny assignment's own code: case recipes only (the engine's probe kinds suffice)."""
