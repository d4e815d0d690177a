"""What defines a design run: config.py (DesignConfig), fields.py (field metadata, TOML), presets.py, resources.py
(memory and job limits), speed.py (time estimates). Imports only objective/ from `design/` (for the valid names)."""
