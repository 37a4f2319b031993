"""Shipped burn-rate window sets (YAML data read by `load_burn_rate_windows`)."""
