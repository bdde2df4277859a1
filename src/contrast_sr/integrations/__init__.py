"""Bridges to the tools super-resolution users already run (optional dependencies, imported only
by name: ``contrast_sr.integrations.spandrel`` needs ``pip install "contrast-sr[spandrel]"``)."""
