"""HW3's part of the mutation audit (never needed to grade): see checks.py."""
