"""Load and sample tools: generate, replay, bench, profile, report, and the shipped sample's scenarios."""
