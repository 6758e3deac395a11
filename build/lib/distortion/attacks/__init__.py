"""Attackers on what a store keeps: inverse networks, and the attacks on keyed templates (ISO/IEC 30136)."""
