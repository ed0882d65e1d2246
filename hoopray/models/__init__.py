"""Model adapters. Each adapter module imports its heavy library inside itself only."""
