"""The run report (JSON) and the registry of known torch findings (findings.toml)."""
