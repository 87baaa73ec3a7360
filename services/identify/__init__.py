"""Step 1 (who registers, for which structure) and the registration's progress seen from outside."""
