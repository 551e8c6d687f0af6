"""The compliance checks, one module per area; importing a module registers its declarations."""
